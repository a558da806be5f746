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
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.ln_1 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2MultiHeadAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(inner, config)
        # ---- your code ends here ----

    def forward(self, hidden_states: Tensor) -> Tensor:
        # ---- your code starts here ----
        # Normalise a copy for the sub-layer; add its output to the untouched stream.
        hidden_states = hidden_states + self.attn(self.ln_1(hidden_states))
        hidden_states = hidden_states + self.mlp(self.ln_2(hidden_states))
        return hidden_states
        # ---- your code ends here ----


# ANCHOR_END: block
