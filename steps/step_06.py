"""Step 06 · Position embeddings.

Attention by itself treats its input as a set: shuffle the tokens and each one gets the
same result. GPT-2 tells positions apart with a second learned table, ``wpe``, one vector
per position, which is added to the token's vector.
"""

from max.experimental.nn import Embedding, Module
from max.experimental.tensor import Tensor

from solutions.solution_01 import GPT2Config


# ANCHOR: position_embeddings
class GPT2PositionEmbeddings(Module):
    """One learned vector per position: [seq] or [batch, seq] → (…, n_embd)."""

    def __init__(self, config: GPT2Config):
        # ---- your code starts here ----
        # TODO: wpe, a table of one n_embd-vector per position. 1 line.
        raise NotImplementedError("GPT2PositionEmbeddings.__init__")
        # ---- your code ends here ----

    def forward(self, position_ids: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: position_ids [seq] or [batch, seq] → their vectors, with a trailing n_embd axis.
        # 1 line.
        raise NotImplementedError("GPT2PositionEmbeddings.forward")
        # ---- your code ends here ----


# ANCHOR_END: position_embeddings
