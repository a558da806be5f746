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
        self.c_fc = Linear(config.n_embd, intermediate_size)  # "fully connected"
        self.c_proj = Linear(intermediate_size, config.n_embd)  # "projection" back
        # ---- your code ends here ----

    def forward(self, hidden_states: Tensor) -> Tensor:
        # ---- your code starts here ----
        hidden_states = self.c_fc(hidden_states)
        # GPT-2 was trained with the tanh approximation of GELU; the exact (erf) GELU
        # gives slightly different numbers.
        hidden_states = F.gelu(hidden_states, approximate="tanh")
        return self.c_proj(hidden_states)
        # ---- your code ends here ----


# ANCHOR_END: mlp
