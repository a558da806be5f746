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
        self.wte = Embedding(config.vocab_size, dim=config.n_embd)
        self.wpe = Embedding(config.n_positions, dim=config.n_embd)
        # A ModuleList names its blocks by index: h.0.ln_1.weight, h.1.ln_1.weight, ...
        self.h = ModuleList([GPT2Block(config) for _ in range(config.n_layer)])
        self.ln_f = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        # ---- your code ends here ----

    def forward(self, input_ids: Tensor) -> Tensor:
        # ---- your code starts here ----
        seq = input_ids.shape[1]  # symbolic when compiled, so the graph makes the positions
        positions = F.arange(0, seq, 1, dtype=DType.int64, device=input_ids.device)
        # [batch, seq, n_embd] + [seq, n_embd]: the same position vectors for every sequence.
        hidden_states = self.wte(input_ids) + self.wpe(positions)
        for block in self.h:
            hidden_states = block(hidden_states)
        # The blocks keep adding to the stream; one last LayerNorm brings it back to scale.
        return self.ln_f(hidden_states)
        # ---- your code ends here ----


# ANCHOR_END: model
