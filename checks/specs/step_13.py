"""Step 13 · KV cache: the cached model computes what the whole model computes.

Greedy ``generate_cached`` must give exactly the ids of the reference ``generate`` (no
cache), and the cached model run in two chunks (the second with past_len > 0 and several
new tokens, so a real mask) must give the logits of one full run. Known mistakes are the
reference with a few lines changed. The cached model runs on MAX's eager
interpreter in a check (``gpt2.compiled.INTERPRET_TWINS``): an edited file needs no compile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from checks.spec import Mistake, Spec, compare_arrays
from checks.specs import generation as g

PROMPT = (287, 257, 263, 89, 272, 294, 76)


@dataclass(frozen=True)
class Chunked:
    """The cached model on ids[:split], then ids[split:]: the last position's logits."""

    ids: tuple[int, ...]
    split: int

    def label(self, _function: str) -> str:
        return (
            f"cached model on {self.split} tokens, then {len(self.ids) - self.split} more "
            f"(past_len={self.split}): logits"
        )


CASES = (
    g.Greedy(PROMPT, 12),
    g.Greedy((0,), 8),
    g.Greedy(g.CONTEXT_PROMPT, 4),  # the last new token takes the context's last position
    Chunked(PROMPT + (3, 9), 5),
    g.Seeded(g.SAMPLE_PROMPT, 10),
)


def _chunked(cached_function, empty_cache, model, case: Chunked):
    run = cached_function(model)
    _, cache = run(list(case.ids[: case.split]), empty_cache(model))
    logits, _ = run(list(case.ids[case.split :]), cache)
    return np.asarray(logits)


def run(ns, case, ctx):
    if isinstance(case, Chunked):
        return _chunked(ns.cached_function, ns.empty_cache, ctx.model, case)
    return g.run_case(ns.generate_cached, ctx.model, case)


def expected(case, ctx):
    """What step 12's generate, which uses no cache at all, answers."""
    from solutions import solution_12

    if isinstance(case, Chunked):
        return solution_12.logits_function(ctx.model)(list(case.ids)).astype(np.float32)
    if isinstance(case, g.Seeded):
        return case
    return g.run_case(solution_12.generate, ctx.model, case)


def compare(actual, expected, tol):
    if isinstance(expected, np.ndarray):
        if not isinstance(actual, np.ndarray):
            return False, f"returned {type(actual).__name__}, expected logits"
        return compare_arrays(actual, expected, 1e-4 * tol.slack, 1e-4 * tol.slack)
    return g.compare(actual, expected)


# ---------------------------------------------------------------- known mistakes
# Each is the reference with a few lines changed; the engine runs the same cases on it.


SPEC = Spec(
    cases=CASES,
    run=run,
    expected=expected,
    keep_expected=True,  # they come from step 12's compiled graph
    compare=compare,
    describe=lambda case: case.label("generate_cached"),
    mistakes=(
        Mistake(
            "cache-not-appended",
            "Your attention only sees the new tokens: put the cached keys and values in front "
            "of the new ones (F.concat([past_key, k], axis=2), same for v) and attend to all.",
            change={
                "key = F.concat([past_key, k], axis=2)": "key = k",
                "value = F.concat([past_value, v], axis=2)": "value = v",
                "q.shape[2], past_key.shape[2],": "q.shape[2], 0,",
            },
        ),
        Mistake(
            "cache-not-returned",
            "Your attention uses the cache but returns only the new keys and values, so the "
            "cache never grows: return the concatenated key and value.",
            change={"merge_heads(out)), key, value": "merge_heads(out)), k, v"},
        ),
        Mistake(
            "new-before-cached",
            "You put the new keys and values in front of the cached ones. The cache keeps the "
            "text's order, and the mask expects it: cached positions first, then the new "
            "ones (F.concat([past_key, k], axis=2), the same for the values).",
            change={"[past_key, k]": "[k, past_key]", "[past_value, v]": "[v, past_value]"},
        ),
        Mistake(
            "positions-not-offset",
            "Your positions restart at 0 on every run. The new tokens continue the text: "
            "their positions are past_len, …, past_len + seq - 1.",
            change={"past_len, past_len + seq, 1, out_dim=seq,": "0, seq, 1,"},
        ),
    ),
    hint="After the prefill, run the cached model on the new token only: run([token], cache); "
    "the cache brings everything before it. To debug, compare one decode step by hand: the "
    "cached model on the prompt, then on one token, against step 12's logits_function on "
    "prompt + token; the last logits must agree.",
)
