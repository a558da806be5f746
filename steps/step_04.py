"""Step 04 · Feed-forward network.

After attention has mixed information between tokens, the MLP works on each token alone:
widen to ``intermediate_size`` (4 × 768 = 3072 in GPT-2), apply a GELU, project back.
"""

from max.experimental import functional as F
from max.experimental.nn import Linear, Module
from max.experimental.tensor import Tensor

from solutions.solution_01 import GPT2Config


# ANCHOR: mlp
class GPT2MLP(Module):
    """Linear (n_embd → intermediate) → GELU (tanh approximation) → Linear (back to n_embd)."""

    def __init__(self, intermediate_size: int, config: GPT2Config):
        # ---- your code starts here ----
        # TODO: c_fc (n_embd → intermediate_size) and c_proj (back to n_embd), both with biases.
        # About 2 lines.
        raise NotImplementedError("GPT2MLP.__init__")
        # ---- your code ends here ----

    def forward(self, hidden_states: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: [batch, seq, n_embd] → the same shape: widen, GPT-2's GELU, narrow. About 3 lines.
        raise NotImplementedError("GPT2MLP.forward")
        # ---- your code ends here ----


# ANCHOR_END: mlp
