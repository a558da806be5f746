"""Step 09 · Stacking blocks.

The whole GPT-2 body: turn token ids into vectors (token + position embeddings), pass
them through ``n_layer`` identical blocks, and normalise the result once more. The output
is one ``n_embd``-vector per token, ready for the language-model head of step 10.
"""

from max.dtype import DType
from max.experimental import functional as F
from max.experimental.nn import Embedding, Module, ModuleList
from max.experimental.tensor import Tensor

from solutions.solution_01 import GPT2Config
from solutions.solution_03 import LayerNorm
from solutions.solution_08 import GPT2Block


# ANCHOR: model
class GPT2Model(Module):
    """Token ids [batch, seq] → hidden states [batch, seq, n_embd].

    The two tables sit directly on the model as plain ``Embedding``s, as in HuggingFace,
    rather than inside the wrapper modules of steps 05 and 06: a wrapper adds its own name
    to the path (``wte.wte.weight``), and real checkpoints call these ``wte.weight`` and
    ``wpe.weight``. (MAX's ``name_transparent`` could hide the wrapper's name, at the price
    of a trick; the plain tables are what those steps built anyway.)
    """

    def __init__(self, config: GPT2Config):
        # ---- your code starts here ----
        # TODO: the parts, named as in HuggingFace's GPT-2:
        #   self.wte:  Embedding(vocab_size, dim=n_embd)    token table
        #   self.wpe:  Embedding(n_positions, dim=n_embd)   position table
        #   self.h:    ModuleList of n_layer GPT2Block(config)
        #   self.ln_f: LayerNorm(n_embd, eps=config.layer_norm_epsilon)
        raise NotImplementedError("GPT2Model.__init__")
        # ---- your code ends here ----

    def forward(self, input_ids: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO:
        #   positions 0, 1, ..., seq - 1, made inside the graph:
        #     seq = input_ids.shape[1]
        #     F.arange(0, seq, 1, dtype=DType.int64, device=input_ids.device)
        #   hidden = wte(input_ids) + wpe(positions)
        #   each block of self.h in turn, each one's output the next one's input
        #   finally ln_f
        raise NotImplementedError("GPT2Model.forward")
        # ---- your code ends here ----


# ANCHOR_END: model
