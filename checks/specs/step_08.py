"""Step 08 · Transformer block."""

from checks.spec import HIDDEN_CASES, Mistake, module_step

SPEC = module_step(
    "GPT2Block",
    cases=HIDDEN_CASES,
    mistakes=(
        Mistake(
            "post-norm",
            "You normalise after adding (post-norm, as in the original Transformer). GPT-2 "
            "normalises the sub-layer's input and leaves the sum alone: "
            "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x)).",
            change={
                "hidden_states + self.attn(self.ln_1(hidden_states))": "self.ln_1(hidden_states + self.attn(hidden_states))",
                "hidden_states + self.mlp(self.ln_2(hidden_states))": "self.ln_2(hidden_states + self.mlp(hidden_states))",
            },
        ),
        Mistake(
            "no-attn-residual",
            "The attention's output replaces the stream instead of being added to it: "
            "x = x + attn(ln_1(x)).",
            change={"hidden_states + self.attn(": "self.attn("},
        ),
        Mistake(
            "no-mlp-residual",
            "The MLP's output replaces the stream instead of being added to it: "
            "x = x + mlp(ln_2(x)).",
            change={"hidden_states + self.mlp(": "self.mlp("},
        ),
        Mistake(
            "residual-from-normed",
            "You add the sub-layer's output to the normalised input. The residual is the "
            "stream as it came in: x = x + attn(ln_1(x)), not ln_1(x) + attn(ln_1(x)).",
            change={
                "hidden_states + self.attn(self.ln_1(hidden_states))": "self.ln_1(hidden_states) + self.attn(self.ln_1(hidden_states))",
                "hidden_states + self.mlp(self.ln_2(hidden_states))": "self.ln_2(hidden_states) + self.mlp(self.ln_2(hidden_states))",
            },
        ),
    ),
    hint="A block is two residual steps: x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x)); "
    "ln_1 belongs to the attention, ln_2 to the MLP, and the MLP's width is n_inner or "
    "4 · n_embd.",
)
