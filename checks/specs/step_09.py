"""Step 09 · Stacking blocks."""

from checks.modules import ONE_OBJECT_TWICE
from checks.spec import TOKEN_ID_CASES, Mistake, module_step

SPEC = module_step(
    "GPT2Model",
    cases=TOKEN_ID_CASES,
    mistakes=(
        Mistake(
            "positions-from-one",
            "Your positions start at 1. The first token is at position 0: "
            "F.arange(0, seq, 1, ...) gives 0, 1, …, seq - 1.",
            change={"F.arange(0, seq, 1,": "F.arange(1, seq + 1, 1,"},
        ),
        Mistake(
            "no-positions",
            "You leave out the position embeddings: add wpe(positions) to wte(input_ids), "
            "with positions 0, 1, …, seq - 1.",
            change={"self.wte(input_ids) + self.wpe(positions)": "self.wte(input_ids)"},
        ),
        Mistake(
            "blocks-not-chained",
            "Every block reads the embeddings and only the last one's output is kept. Chain "
            "them: each block's output is the next block's input.",
            change={
                "hidden_states = block(hidden_states)": "out = block(hidden_states)",
                "return self.ln_f(hidden_states)": "return self.ln_f(out)",
            },
        ),
        Mistake(
            "one-block-repeated",
            ONE_OBJECT_TWICE,
            change={
                "[GPT2Block(config) for _ in range(config.n_layer)]": "[GPT2Block(config)] * config.n_layer"
            },
        ),
        Mistake(
            "no-ln-f",
            "You skip the final LayerNorm: after the last block, return ln_f(hidden_states).",
            change={"return self.ln_f(hidden_states)": "return hidden_states"},
        ),
    ),
    hint="Embeddings: wte(input_ids) + wpe(positions) with positions 0 … seq - 1; then every "
    "block of self.h in order, each on the previous one's output; then ln_f.",
)
