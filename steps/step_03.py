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
        # TODO: create the two parameters and remember eps.
        #   self.weight: Tensor.ones([dim])   self.bias: Tensor.zeros([dim])
        raise NotImplementedError("LayerNorm.__init__")
        # ---- your code ends here ----

    def forward(self, x: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: normalize x over its last axis.
        #   mean over the last axis (F.mean(x, axis=-1) keeps that axis, size 1);
        #   variance = mean of the squared deviations (divide by n, not n - 1);
        #   (x - mean) / sqrt(variance + eps), then * self.weight + self.bias.
        raise NotImplementedError("LayerNorm.forward")
        # ---- your code ends here ----


# ANCHOR_END: layer_norm
