"""Step 08 · Transformer block.

A block is the unit GPT-2 repeats: attention lets the tokens share information, the MLP
then works on each token alone. Each sub-layer reads a normalised copy of the stream and
*adds* its result back to it ("pre-norm" with residual connections), so the stream itself
is never overwritten and twelve blocks can refine it step by step.
"""

from max.experimental.nn import Module
from max.experimental.tensor import Tensor

from solutions.solution_01 import GPT2Config
from solutions.solution_03 import LayerNorm
from solutions.solution_04 import GPT2MLP
from solutions.solution_07 import GPT2MultiHeadAttention


# ANCHOR: block
class GPT2Block(Module):
    """x + attn(ln_1(x)), then + mlp(ln_2(·)): [batch, seq, n_embd] → same shape."""

    def __init__(self, config: GPT2Config):
        # ---- your code starts here ----
        # TODO: ln_1, attn, ln_2 and mlp (HuggingFace's names), from steps 03, 07, 03 and 04;
        # the MLP's width is the config's n_inner, or 4 · n_embd without one. About 5 lines.
        raise NotImplementedError("GPT2Block.__init__")
        # ---- your code ends here ----

    def forward(self, hidden_states: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: [batch, seq, n_embd] → the same shape: the attention, then the MLP, each on a
        # normalised copy and added to the stream (pre-norm). About 2 lines.
        raise NotImplementedError("GPT2Block.forward")
        # ---- your code ends here ----


# ANCHOR_END: block
