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
        # TODO: the gain `weight` and the shift `bias`, both [dim], starting as the identity;
        # keep eps. About 3 lines.
        raise NotImplementedError("LayerNorm.__init__")
        # ---- your code ends here ----

    def forward(self, x: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: x [..., dim] → the same shape, normalised over the last axis (biased variance),
        # then scaled and shifted. About 5 lines.
        raise NotImplementedError("LayerNorm.forward")
        # ---- your code ends here ----


# ANCHOR_END: layer_norm
