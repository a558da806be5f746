"""Step 05 · Token embeddings.

The model cannot do arithmetic on token ids: id 50 is not "more" than id 49. Instead each
id selects one row of a learned table ``wte`` ("word token embedding"), a vector of
``n_embd`` numbers that training has placed so similar tokens end up close together.
"""

from max.experimental.nn import Embedding, Module
from max.experimental.tensor import Tensor

from solutions.solution_01 import GPT2Config


# ANCHOR: token_embeddings
class GPT2TokenEmbeddings(Module):
    """Looks up one ``n_embd``-vector per token id: [batch, seq] → [batch, seq, n_embd]."""

    def __init__(self, config: GPT2Config):
        # ---- your code starts here ----
        # TODO: wte, a table of one n_embd-vector per token of the vocabulary. 1 line.
        raise NotImplementedError("GPT2TokenEmbeddings.__init__")
        # ---- your code ends here ----

    def forward(self, input_ids: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: input_ids [batch, seq] → their vectors [batch, seq, n_embd]. 1 line.
        raise NotImplementedError("GPT2TokenEmbeddings.forward")
        # ---- your code ends here ----


# ANCHOR_END: token_embeddings
