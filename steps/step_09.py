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
        # TODO: wte and wpe (steps 05-06's tables), h (n_layer blocks, each its own), ln_f.
        # About 4 lines.
        raise NotImplementedError("GPT2Model.__init__")
        # ---- your code ends here ----

    def forward(self, input_ids: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: input_ids [batch, seq] → hidden states [batch, seq, n_embd]: token plus position
        # vectors (positions 0 … seq - 1, made in the graph), every block in turn, the final
        # norm. About 5 lines.
        raise NotImplementedError("GPT2Model.forward")
        # ---- your code ends here ----


# ANCHOR_END: model
