"""Step 02 · Causal mask: exact values for several (seq_len, past_len) pairs."""

import numpy as np

from checks.spec import Mistake, Spec, exact
from gpt2.runtime import to_numpy

# The line of the reference that makes the mask; each mistake draws it in NumPy instead.
RETURN = "    return F.band_part(blocked, num_lower=None, num_upper=past_len, exclude=True)\n"


def drawn(n_keys: str, blocked: str, visible: str = "0.0", hidden: str = "-np.inf"):
    """A mistake's ``change``: the mask drawn in NumPy, ``hidden`` where ``blocked``."""
    return {
        RETURN: f"""    import numpy as np

    i, j = np.arange(seq_len)[:, None], np.arange({n_keys})[None, :]
    mask = np.where({blocked}, {hidden}, {visible}).astype(np.float32)
    return Tensor.from_dlpack(mask).to(device)
"""
    }


def run(ns, case, ctx):
    seq_len, past_len = case
    target = ctx.target
    return to_numpy(ns.causal_mask(seq_len, past_len, dtype=target.dtype, device=target.device))


def _visible(reference):
    return reference == 0


def boolean_mask(actual, expected):
    actual = np.asarray(actual)
    return actual.shape == expected.shape and bool(
        np.all(actual.astype(np.float64) == _visible(expected))
    )


def finite_negative(actual, expected):
    actual = np.asarray(actual)
    if actual.shape != expected.shape or actual.dtype.kind != "f":
        return False
    blocked = ~_visible(expected)
    return bool(
        np.all(np.isfinite(actual))
        and np.all(actual[~blocked] == 0)
        and np.all(actual[blocked] <= -1e3)
    )


SPEC = Spec(
    cases=((1, 0), (4, 0), (3, 2), (1, 5), (6, 3)),
    run=run,
    compare=exact,
    describe=lambda case: f"causal_mask(seq_len={case[0]}, past_len={case[1]})",
    mistakes=(
        Mistake(
            "hides-diagonal",
            "Your mask also hides the diagonal: a token may attend to itself (key j = past_len "
            "+ i). Keep num_upper=past_len, not past_len - 1.",
            change=drawn("past_len + seq_len", "j >= past_len + i"),
        ),
        Mistake(
            "past-ignored",
            "Your mask ignores past_len: it must have past_len + seq_len columns, and query i "
            "sits at position past_len + i, so it sees all past_len cached keys.",
            change=drawn("seq_len", "j > i"),
        ),
        Mistake(
            "past-ignored-offset",
            "Your mask has the right width but treats query i as position i. With a cache, "
            "query i is at position past_len + i: shift the diagonal by past_len.",
            change=drawn("past_len + seq_len", "j > i"),
        ),
        Mistake(
            "future-visible",
            "Your mask is the wrong way round: it hides the past and shows the future. "
            "-inf belongs above the diagonal (j > past_len + i).",
            change=drawn("past_len + seq_len", "j < past_len + i"),
        ),
        Mistake(
            "boolean",
            "Your mask says True/1 for visible and False/0 for hidden. The attention adds this "
            "mask to its scores, so it must be 0 (visible) and -inf (hidden).",
            detect=boolean_mask,
            change=drawn("past_len + seq_len", "j > past_len + i", "1.0", "0.0"),
        ),
        Mistake(
            "finite",
            "Use float('-inf') for hidden positions, not a large finite number: -inf makes the "
            "softmax give exactly 0, whatever the scores are.",
            detect=finite_negative,
            change=drawn("past_len + seq_len", "j > past_len + i", hidden="-1e9"),
        ),
    ),
    hint="Draw the mask for seq_len=3, past_len=2 on paper: 3 rows, 5 columns, -inf only "
    "where column j > 2 + row i.",
)
