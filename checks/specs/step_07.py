"""Step 07 · Multi-head attention."""

from checks.spec import HIDDEN_CASES, Case, Mistake, module_step

SPEC = module_step(
    "GPT2MultiHeadAttention",
    cases=(*HIDDEN_CASES, Case(("batch", "seq", "n_embd"), {"batch": 1, "seq": 12})),
    mistakes=(
        Mistake(
            "no-scale",
            "You do not scale the scores. Divide q @ kᵀ by sqrt(head_dim) before the softmax; "
            "without it the softmax saturates as heads get wider.",
            change={" / math.sqrt(self.head_dim)": ""},
        ),
        Mistake(
            "scale-n-embd",
            "You divide the scores by sqrt(n_embd). Each head compares head_dim-long vectors, "
            "so the scale is sqrt(head_dim) = sqrt(n_embd / n_head).",
            change={"math.sqrt(self.head_dim)": "math.sqrt(self.n_head * self.head_dim)"},
        ),
        Mistake(
            "scale-head-dim",
            "You divide the scores by head_dim; the scale is its square root, math.sqrt(head_dim).",
            change={"math.sqrt(self.head_dim)": "self.head_dim"},
        ),
        Mistake(
            "no-mask",
            "Your attention is not causal: tokens see the future. Add causal_mask(seq, ...) "
            "to the scores before the softmax. (Sequences of length 1 pass either way, which "
            "is why only the longer ones fail.)",
            change={
                "scores = scores + causal_mask(seq, dtype=scores.dtype, device=scores.device)": ""
            },
        ),
        Mistake(
            "split-kqv",
            "You read c_attn's output as k, q, v. GPT-2 lays it out as q, k, v: the first "
            "n_embd columns are the queries, then the keys, then the values.",
            change={"q, k, v = F.split(": "k, q, v = F.split("},
        ),
        Mistake(
            "split-vkq",
            "You read c_attn's output as v, k, q. GPT-2 lays it out as q, k, v: the first "
            "n_embd columns are the queries, then the keys, then the values.",
            change={"q, k, v = F.split(": "v, k, q = F.split("},
        ),
        Mistake(
            "heads-without-transpose",
            "You reshape straight to [batch, n_head, seq, head_dim]. That cuts the numbers in "
            "the wrong places: reshape to [batch, seq, n_head, head_dim] first, then swap axes "
            "1 and 2 (and the reverse when merging).",
            change={
                "[batch, seq, self.n_head, self.head_dim]": "[batch, self.n_head, seq, self.head_dim]",
                "return x.transpose(1, 2)": "return x",
                "x = x.transpose(1, 2)  # back": "# back",
                "batch, seq, _, _ = x.shape": "batch, _, seq, _ = x.shape",
            },
        ),
        Mistake(
            "merge-without-transpose",
            "Your heads are split right, but merged by reshaping [batch, n_head, seq, "
            "head_dim] straight to [batch, seq, n_embd]. Swap axes 1 and 2 back first.",
            change={
                "x = x.transpose(1, 2)  # back": "# back",
                "batch, seq, _, _ = x.shape": "batch, _, seq, _ = x.shape",
            },
        ),
    ),
    hint="Check the shapes step by step: c_attn gives [batch, seq, 3·n_embd]; q, k, v are "
    "[batch, n_head, seq, head_dim]; the scores [batch, n_head, seq, seq]; the output of the "
    "heads, merged, [batch, seq, n_embd] again before c_proj.",
)
