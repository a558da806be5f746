"""Step 08 · Transformer block."""

from checks.spec import Case, Mistake, module_step


def block_variant(forward):
    def variant(cls):
        class Variant(cls):
            pass

        Variant.forward = forward
        return Variant

    return variant


def post_norm(self, x):
    x = self.ln_1(x + self.attn(x))
    return self.ln_2(x + self.mlp(x))


def no_attn_residual(self, x):
    x = self.attn(self.ln_1(x))
    return x + self.mlp(self.ln_2(x))


def no_mlp_residual(self, x):
    x = x + self.attn(self.ln_1(x))
    return self.mlp(self.ln_2(x))


def residual_from_normed(self, x):
    normed = self.ln_1(x)
    x = normed + self.attn(normed)
    normed = self.ln_2(x)
    return normed + self.mlp(normed)


SPEC = module_step(
    "GPT2Block",
    build=lambda cls, config: cls(config),
    cases=(
        Case(("batch", "seq", "n_embd"), {"batch": 2, "seq": 7}),
        Case(("batch", "seq", "n_embd"), {"batch": 3, "seq": 1}),
    ),
    mistakes=(
        Mistake(
            "post-norm",
            "You normalise after adding (post-norm, as in the original Transformer). GPT-2 "
            "normalises the sub-layer's input and leaves the sum alone: "
            "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x)).",
            variant=block_variant(post_norm),
        ),
        Mistake(
            "no-attn-residual",
            "The attention's output replaces the stream instead of being added to it: "
            "x = x + attn(ln_1(x)).",
            variant=block_variant(no_attn_residual),
        ),
        Mistake(
            "no-mlp-residual",
            "The MLP's output replaces the stream instead of being added to it: "
            "x = x + mlp(ln_2(x)).",
            variant=block_variant(no_mlp_residual),
        ),
        Mistake(
            "residual-from-normed",
            "You add the sub-layer's output to the normalised input. The residual is the "
            "stream as it came in: x = x + attn(ln_1(x)), not ln_1(x) + attn(ln_1(x)).",
            variant=block_variant(residual_from_normed),
        ),
    ),
    hint="A block is two residual steps: x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x)); "
    "ln_1 belongs to the attention, ln_2 to the MLP, and the MLP's width is n_inner or "
    "4 · n_embd.",
)
