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
        # TODO: remember the head count and each head's width, then two Linear layers
        # (with biases), named as in HuggingFace's GPT-2:
        #   self.n_head = config.n_head
        #   self.head_dim = config.n_embd // config.n_head
        #   self.c_attn: n_embd -> 3 * n_embd  (queries, keys and values side by side)
        #   self.c_proj: n_embd -> n_embd
        raise NotImplementedError("GPT2MultiHeadAttention.__init__")
        # ---- your code ends here ----

    # ANCHOR: split_heads
    def split_heads(self, x: Tensor) -> Tensor:
        """[batch, seq, n_embd] → [batch, n_head, seq, head_dim]: one slice per head."""
        # ---- your code starts here ----
        # TODO: reshape to [batch, seq, n_head, head_dim], then swap axes 1 and 2.
        #   batch, seq, _ = x.shape   (symbolic sizes when compiled: pass them on as they are)
        #   x.reshape([...]), x.transpose(1, 2)
        raise NotImplementedError("GPT2MultiHeadAttention.split_heads")
        # ---- your code ends here ----

    # ANCHOR_END: split_heads

    # ANCHOR: merge_heads
    def merge_heads(self, x: Tensor) -> Tensor:
        """[batch, n_head, seq, head_dim] → [batch, seq, n_embd]: the heads side by side."""
        # ---- your code starts here ----
        # TODO: the inverse of split_heads: swap axes 1 and 2 back, then reshape to
        # [batch, seq, n_head * head_dim].
        raise NotImplementedError("GPT2MultiHeadAttention.merge_heads")
        # ---- your code ends here ----

    # ANCHOR_END: merge_heads

    # ANCHOR: attend
    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Scaled dot-product attention, per head, with a causal mask."""
        # ---- your code starts here ----
        # TODO: q, k, v are [batch, n_head, seq, head_dim].
        #   scores = q @ k.transpose(-1, -2), divided by math.sqrt(self.head_dim)
        #   add causal_mask(seq, dtype=scores.dtype, device=scores.device), seq = q.shape[-2]
        #   softmax over the keys (the last axis), then multiply by v.
        raise NotImplementedError("GPT2MultiHeadAttention.attend")
        # ---- your code ends here ----

    # ANCHOR_END: attend

    def forward(self, hidden_states: Tensor) -> Tensor:
        # ---- your code starts here ----
        # TODO: c_attn, then F.split(..., [n_embd, n_embd, n_embd], axis=-1) into q, k, v
        # (in that order); split each into heads, attend, merge the heads, then c_proj.
        raise NotImplementedError("GPT2MultiHeadAttention.forward")
        # ---- your code ends here ----


# ANCHOR_END: attention
