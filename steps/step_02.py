"""Step 02 · Causal mask.

A language model predicts each token from the ones before it, so while it reads a sentence
position i must not look at positions after i. The mask is added to the attention scores
before the softmax: 0 keeps a score, -inf turns it into a probability of exactly 0.
"""

from max.driver import Device
from max.dtype import DType
from max.experimental import functional as F
from max.experimental.tensor import Tensor


# ANCHOR: causal_mask
def causal_mask(seq_len: int, past_len: int = 0, *, dtype: DType, device: Device) -> Tensor:
    """A [seq_len, past_len + seq_len] mask: 0 where query i may see key j, -inf elsewhere.

    The keys are the ``past_len`` tokens seen before (step 13 caches them) followed by the
    ``seq_len`` new ones, so new token i sits at position ``past_len + i`` and may see every
    key ``j <= past_len + i``.
    """
    # ---- your code starts here ----
    # TODO: a [seq_len, past_len + seq_len] tensor in `dtype` on `device`: 0 where query i
    # may see key j, -inf everywhere else. About 2 lines.
    raise NotImplementedError("causal_mask")
    # ---- your code ends here ----


# ANCHOR_END: causal_mask
