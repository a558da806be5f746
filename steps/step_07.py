"""Step 07 · Multi-head attention.

Attention is how one token takes information from others. Each token asks a question
(its query), advertises what it holds (its key) and offers a payload (its value). A query
scores every key, the softmax turns the scores into weights, and the token receives the
weighted sum of the values. GPT-2 runs ``n_head`` such attentions side by side on slices
of the vector, so different heads can look for different things.
"""

import math

from max.experimental import functional as F
from max.experimental.nn import Linear, Module
from max.experimental.tensor import Tensor

from solutions.solution_01 import GPT2Config
from solutions.solution_02 import causal_mask


# ANCHOR: attention
class GPT2MultiHeadAttention(Module):
    """Causal self-attention with ``n_head`` heads: [batch, seq, n_embd] → same shape."""

    def __init__(self, config: GPT2Config):
        # ---- your code starts here ----
        # TODO: keep n_head and head_dim (n_embd split evenly between the heads); c_attn makes
        # queries, keys and values side by side (n_embd → 3 · n_embd), c_proj mixes the heads'
        # output (n_embd → n_embd); both with biases. About 4 lines.
        raise NotImplementedError("GPT2MultiHeadAttention.__init__")
        # ---- your code ends here ----

    # ANCHOR: split_heads
    def split_heads(self, x: Tensor) -> Tensor:
        """[batch, seq, n_embd] → [batch, n_head, seq, head_dim]: one slice per head."""
        # ---- your code starts here ----
        # TODO: [batch, seq, n_embd] → [batch, n_head, seq, head_dim]. About 2 lines; keep the
        # sizes symbolic (take them from x.shape).
        raise NotImplementedError("GPT2MultiHeadAttention.split_heads")
        # ---- your code ends here ----

    # ANCHOR_END: split_heads

    # ANCHOR: merge_heads
    def merge_heads(self, x: Tensor) -> Tensor:
        """[batch, n_head, seq, head_dim] → [batch, seq, n_embd]: the heads side by side."""
        # ---- your code starts here ----
        # TODO: [batch, n_head, seq, head_dim] → [batch, seq, n_embd], the inverse of
        # split_heads. About 3 lines.
        raise NotImplementedError("GPT2MultiHeadAttention.merge_heads")
        # ---- your code ends here ----

    # ANCHOR_END: merge_heads

    # ANCHOR: attend
    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Scaled dot-product attention, per head, with a causal mask."""
        # ---- your code starts here ----
        # TODO: q, k, v [batch, n_head, seq, head_dim] → [batch, n_head, seq, head_dim]: scaled
        # scores of every query against every key, no peeking at later keys, weights that sum
        # to 1 per query, the weighted sum of the values. About 4 lines.
        raise NotImplementedError("GPT2MultiHeadAttention.attend")
        # ---- your code ends here ----

    # ANCHOR_END: attend

    def forward(self, hidden_states: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: [batch, seq, n_embd] → the same shape: queries, keys and values (in that order),
        # per head, attended, merged, mixed. About 3 lines.
        raise NotImplementedError("GPT2MultiHeadAttention.forward")
        # ---- your code ends here ----


# ANCHOR_END: attention
