"""Step 10 · Language-model head.

The last step turns each hidden vector into one score (a logit) per vocabulary token:
how likely that token is to come next. GPT-2 reuses the token-embedding table for this
("weight tying"): the vector that *reads* token t into the model is also the one that
*scores* t at the output, so one [vocab_size, n_embd] matrix serves both ends.
"""

from max.experimental.nn import Linear, Module
from max.experimental.tensor import Tensor

from solutions.solution_01 import GPT2Config
from solutions.solution_09 import GPT2Model


# ANCHOR: lm_head
class GPT2LMHeadModel(Module):
    """Token ids [batch, seq] → logits [batch, seq, vocab_size].

    Tying is real, not a copy: ``lm_head.weight`` *is* the tensor ``transformer.wte.weight``.
    MAX then lists it under both names in ``parameters`` (so a checkpoint that has both keys
    loads), but a compiled graph holds it once, under the first name,
    ``transformer.wte.weight``.
    """

    def __init__(self, config: GPT2Config):
        self.config = config  # kept: later steps build the model's twins from it
        # ---- your code starts here ----
        # TODO: the body (transformer) and the head (lm_head, n_embd → vocab_size, no bias), the
        # head's weight being the token table itself. About 3 lines.
        raise NotImplementedError("GPT2LMHeadModel.__init__")
        # ---- your code ends here ----

    def forward(self, input_ids: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: input_ids [batch, seq] → logits [batch, seq, vocab_size]. 1 line.
        raise NotImplementedError("GPT2LMHeadModel.forward")
        # ---- your code ends here ----


# ANCHOR_END: lm_head
