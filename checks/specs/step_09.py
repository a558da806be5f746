"""Step 09 · Stacking blocks."""

from max.dtype import DType
from max.experimental import functional as F

from checks.modules import ONE_OBJECT_TWICE
from checks.spec import TOKEN_ID_CASES, Mistake, module_step


def model_variant(start: int = 0, positions: bool = True, chained: bool = True, ln_f: bool = True):
    """GPT2Model.forward with one thing changed."""

    def forward(self, input_ids):
        seq = input_ids.shape[1]
        hidden = self.wte(input_ids)
        if positions:
            ids = F.arange(start, seq + start, 1, dtype=DType.int64, device=input_ids.device)
            hidden = hidden + self.wpe(ids)
        out = hidden
        for block in self.h:
            out = block(out if chained else hidden)
        return self.ln_f(out) if ln_f else out

    def variant(cls):
        class Variant(cls):
            pass

        Variant.forward = forward
        return Variant

    return variant


def one_block_repeated(cls):
    """n_layer places in h, one block object in all of them (one set of weights)."""
    from max.experimental.nn import ModuleList

    from solutions.solution_08 import GPT2Block

    class Repeated(cls):
        def __init__(self, config):
            super().__init__(config)
            self.h = ModuleList([GPT2Block(config)] * config.n_layer)

    return Repeated


SPEC = module_step(
    "GPT2Model",
    build=lambda cls, config: cls(config),
    cases=TOKEN_ID_CASES,
    mistakes=(
        Mistake(
            "positions-from-one",
            "Your positions start at 1. The first token is at position 0: "
            "F.arange(0, seq, 1, ...) gives 0, 1, …, seq - 1.",
            variant=model_variant(start=1),
        ),
        Mistake(
            "no-positions",
            "You leave out the position embeddings: add wpe(positions) to wte(input_ids), "
            "with positions 0, 1, …, seq - 1.",
            variant=model_variant(positions=False),
        ),
        Mistake(
            "blocks-not-chained",
            "Every block reads the embeddings and only the last one's output is kept. Chain "
            "them: each block's output is the next block's input.",
            variant=model_variant(chained=False),
        ),
        Mistake(
            "one-block-repeated",
            ONE_OBJECT_TWICE,
            variant=one_block_repeated,
        ),
        Mistake(
            "no-ln-f",
            "You skip the final LayerNorm: after the last block, return ln_f(hidden_states).",
            variant=model_variant(ln_f=False),
        ),
    ),
    hint="Embeddings: wte(input_ids) + wpe(positions) with positions 0 … seq - 1; then every "
    "block of self.h in order, each on the previous one's output; then ln_f.",
)
