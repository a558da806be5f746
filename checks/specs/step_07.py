"""Step 07 · Multi-head attention."""

import math

from max.experimental import functional as F

from checks.spec import Case, Mistake, module_step
from solutions.solution_02 import causal_mask


def _attend(scale=None, mask=True):
    """An ``attend`` with one thing changed; ``scale(head_dim, n_embd)`` divides the scores."""

    def attend(self, q, k, v):
        scores = q @ k.transpose(-1, -2)
        if scale is not None:
            scores = scores / scale(self.head_dim, self.n_head * self.head_dim)
        if mask:
            scores = scores + causal_mask(q.shape[-2], dtype=scores.dtype, device=scores.device)
        return F.softmax(scores, axis=-1) @ v

    return attend


def wrong_attend(**changes):
    def variant(cls):
        class WrongAttend(cls):
            attend = _attend(**changes)

        return WrongAttend

    return variant


def split_order(order: str):
    """c_attn's output read as, e.g., "kqv": the first third taken as k, the second as q."""

    def variant(cls):
        class WrongOrder(cls):
            def forward(self, hidden_states):
                n_embd = self.n_head * self.head_dim
                parts = F.split(self.c_attn(hidden_states), [n_embd] * 3, axis=-1)
                named = dict(zip(order, parts, strict=True))
                heads = [self.split_heads(named[name]) for name in "qkv"]
                return self.c_proj(self.merge_heads(self.attend(*heads)))

        return WrongOrder

    return variant


def _reshape_split(self, x):
    batch, seq, _ = x.shape
    return x.reshape([batch, self.n_head, seq, self.head_dim])


def _reshape_merge(self, x):
    batch, _, seq, _ = x.shape
    return x.reshape([batch, seq, self.n_head * self.head_dim])


def heads_without_transpose(cls):
    class NoTranspose(cls):
        split_heads = _reshape_split
        merge_heads = _reshape_merge

    return NoTranspose


def merge_without_transpose(cls):
    class MergeNoTranspose(cls):
        merge_heads = _reshape_merge

    return MergeNoTranspose


SPEC = module_step(
    "GPT2MultiHeadAttention",
    build=lambda cls, config: cls(config),
    cases=(
        Case(("batch", "seq", "n_embd"), {"batch": 2, "seq": 7}),
        Case(("batch", "seq", "n_embd"), {"batch": 3, "seq": 1}),
        Case(("batch", "seq", "n_embd"), {"batch": 1, "seq": 12}),
    ),
    mistakes=(
        Mistake(
            "no-scale",
            "You do not scale the scores. Divide q @ kᵀ by sqrt(head_dim) before the softmax; "
            "without it the softmax saturates as heads get wider.",
            variant=wrong_attend(scale=None),
        ),
        Mistake(
            "scale-n-embd",
            "You divide the scores by sqrt(n_embd). Each head compares head_dim-long vectors, "
            "so the scale is sqrt(head_dim) = sqrt(n_embd / n_head).",
            variant=wrong_attend(scale=lambda head_dim, n_embd: math.sqrt(n_embd)),
        ),
        Mistake(
            "scale-head-dim",
            "You divide the scores by head_dim; the scale is its square root, math.sqrt(head_dim).",
            variant=wrong_attend(scale=lambda head_dim, n_embd: head_dim),
        ),
        Mistake(
            "no-mask",
            "Your attention is not causal: tokens see the future. Add causal_mask(seq, ...) "
            "to the scores before the softmax. (Sequences of length 1 pass either way, which "
            "is why only the longer ones fail.)",
            variant=wrong_attend(scale=lambda head_dim, n_embd: math.sqrt(head_dim), mask=False),
        ),
        Mistake(
            "split-kqv",
            "You read c_attn's output as k, q, v. GPT-2 lays it out as q, k, v: the first "
            "n_embd columns are the queries, then the keys, then the values.",
            variant=split_order("kqv"),
        ),
        Mistake(
            "split-vkq",
            "You read c_attn's output as v, k, q. GPT-2 lays it out as q, k, v: the first "
            "n_embd columns are the queries, then the keys, then the values.",
            variant=split_order("vkq"),
        ),
        Mistake(
            "heads-without-transpose",
            "You reshape straight to [batch, n_head, seq, head_dim]. That cuts the numbers in "
            "the wrong places: reshape to [batch, seq, n_head, head_dim] first, then swap axes "
            "1 and 2 (and the reverse when merging).",
            variant=heads_without_transpose,
        ),
        Mistake(
            "merge-without-transpose",
            "Your heads are split right, but merged by reshaping [batch, n_head, seq, "
            "head_dim] straight to [batch, seq, n_embd]. Swap axes 1 and 2 back first.",
            variant=merge_without_transpose,
        ),
    ),
    hint="Check the shapes step by step: c_attn gives [batch, seq, 3·n_embd]; q, k, v are "
    "[batch, n_head, seq, head_dim]; the scores [batch, n_head, seq, seq]; the output of the "
    "heads, merged, [batch, seq, n_embd] again before c_proj.",
)
