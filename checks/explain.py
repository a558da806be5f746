"""What MAX's error messages usually mean, in a learner's words.

Each entry pairs a pattern found in MAX's message with a one-line explanation. The
Troubleshooting chapter of the book lists the same symptoms, and
``tests/test_troubleshooting.py`` provokes them with the pinned MAX and checks what this
table calls each, so that it stays true.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def _shapes_do_not_fit(message: str) -> str:
    """The shapes MAX names, and what must hold between them; no guess at why they differ."""
    shapes = re.findall(r"shape (\[[^\]]*\])", message)
    named = f": {' and '.join(dict.fromkeys(shapes))}" if shapes else ""
    rule = (
        " For `a @ b`, the last axis of `a` must equal the second-to-last of `b`."
        if re.search(r"[Mm]atrix multiplication|matmul|[Mm]atmul", message)
        else ""
    )
    return (
        f"The shapes of two tensors do not fit at the line above{named}.{rule} Print the "
        "shapes just before that line to see which one is not what you meant."
    )


MEANINGS: list[tuple[str, str | Callable[[str], str]]] = [
    (
        r"float32.*bfloat16|bfloat16.*float32|[Dd]type mismatch|dtype.*does not match|"
        r"expected dtype|different dtypes",
        "Two tensors have different dtypes. MAX does not promote silently: cast one with "
        "`.cast(dtype)`, or build the weights in the dtype of the input (on a GPU MAX's "
        "default dtype is bfloat16).",
    ),
    (
        r"not assignable to parameter",
        "A weight does not fit the parameter it is loaded into (its shape differs). A Linear "
        "stores its weight as [out, in]; HuggingFace's GPT-2 keeps c_attn, c_proj and c_fc "
        "as Conv1D weights, [in, out], which must be transposed when loading.",
    ),
    (
        r"matmul|[Mm]atrix multiplication|contraction|[Ii]ncompatible.*shape|shape.*mismatch|"
        r"cannot broadcast|[Bb]roadcast|[Ss]hapes? .*(do not|don't|must) match|rank",
        lambda message: _shapes_do_not_fit(message),
    ),
    (
        r"gather|indices|index.*(integer|int)",
        "An embedding lookup needs integer ids (int32/int64/uint64), not floats.",
    ),
    (
        r"Symbolic|symbolic|StaticDim|Dim\(|AlgebraicDim|int\(\) argument",
        "A compiled graph keeps the batch and sequence lengths symbolic (`python -m gpt2`, "
        "step 14's server). Keep shapes as MAX `Dim`s (`x.shape[1]`) instead of converting "
        "them with `int()`.",
    ),
    (
        r"KeyError|[Mm]issing.*weight|no entry for a parameter|not found in",
        "A parameter has a different name than the one the weights are stored under. "
        "Keep HuggingFace's names (`c_fc`, `c_proj`, `wte`, ...).",
    ),
    (
        r"has no attribute",
        "An attribute is missing: check the spelling, and that `__init__` creates it "
        "before `forward` uses it.",
    ),
]


def explain(message: str) -> str:
    """The usual meaning of ``message``, or an empty string when we do not recognise it."""
    for pattern, meaning in MEANINGS:
        if re.search(pattern, message):
            return meaning(message) if callable(meaning) else meaning
    return ""
