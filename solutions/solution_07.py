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
        self.n_head = config.n_head
        self.head_dim = config.n_embd // config.n_head
        # One Linear makes queries, keys and values at once, side by side: q | k | v.
        self.c_attn = Linear(config.n_embd, 3 * config.n_embd)
        # After the heads are merged, c_proj mixes what they found.
        self.c_proj = Linear(config.n_embd, config.n_embd)
        # ---- your code ends here ----

    # ANCHOR: split_heads
    def split_heads(self, x: Tensor) -> Tensor:
        """[batch, seq, n_embd] → [batch, n_head, seq, head_dim]: one slice per head."""
        # ---- your code starts here ----
        batch, seq, _ = x.shape  # symbolic sizes when compiled: use them, not numbers
        x = x.reshape([batch, seq, self.n_head, self.head_dim])
        # Move the head axis in front of seq, so each head is a [seq, head_dim] matrix.
        return x.transpose(1, 2)
        # ---- your code ends here ----

    # ANCHOR_END: split_heads

    # ANCHOR: merge_heads
    def merge_heads(self, x: Tensor) -> Tensor:
        """[batch, n_head, seq, head_dim] → [batch, seq, n_embd]: the heads side by side."""
        # ---- your code starts here ----
        x = x.transpose(1, 2)  # back to [batch, seq, n_head, head_dim]
        batch, seq, _, _ = x.shape
        return x.reshape([batch, seq, self.n_head * self.head_dim])
        # ---- your code ends here ----

    # ANCHOR_END: merge_heads

    # ANCHOR: attend
    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Scaled dot-product attention, per head, with a causal mask."""
        # ---- your code starts here ----
        # Each query against each key: [batch, n_head, seq, seq]. Dividing by
        # sqrt(head_dim) keeps the scores' spread independent of the head's width.
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        seq = q.shape[-2]
        # 0 where a query may look, -inf in its future; broadcasts over batch and heads.
        scores = scores + causal_mask(seq, dtype=scores.dtype, device=scores.device)
        weights = F.softmax(scores, axis=-1)  # each query's weights over the keys sum to 1
        return weights @ v
        # ---- your code ends here ----

    # ANCHOR_END: attend

    def forward(self, hidden_states: Tensor) -> Tensor:
        # ---- your code starts here ----
        n_embd = self.n_head * self.head_dim
        q, k, v = F.split(self.c_attn(hidden_states), [n_embd, n_embd, n_embd], axis=-1)
        out = self.attend(self.split_heads(q), self.split_heads(k), self.split_heads(v))
        return self.c_proj(self.merge_heads(out))
        # ---- your code ends here ----


# ANCHOR_END: attention
