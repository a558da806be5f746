"""Step 03 · Layer normalization.

Each token's vector is rescaled to mean 0 and variance 1 across its features, then given
a learned gain (``weight``) and shift (``bias``). Keeping every block's input at the same
scale is what lets twelve blocks stack without the numbers drifting.
"""

from max.experimental import functional as F
from max.experimental.nn import Module
from max.experimental.tensor import Tensor


# ANCHOR: layer_norm
class LayerNorm(Module):
    """Normalizes the last axis, then scales by ``weight`` and shifts by ``bias``."""

    def __init__(self, dim: int, *, eps: float = 1e-5):
        # ---- your code starts here ----
        self.weight = Tensor.ones([dim])  # start as the identity: gain 1 ...
        self.bias = Tensor.zeros([dim])  # ... and shift 0
        self.eps = eps
        # ---- your code ends here ----

    def forward(self, x: Tensor) -> Tensor:
        # ---- your code starts here ----
        mean = F.mean(x, axis=-1)  # reductions keep the axis (size 1), so this broadcasts
        centered = x - mean
        variance = F.mean(centered * centered, axis=-1)  # biased: divide by n, not n - 1
        normalized = centered * F.rsqrt(variance + self.eps)
        return normalized * self.weight + self.bias
        # ---- your code ends here ----


# ANCHOR_END: layer_norm
