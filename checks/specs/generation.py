"""What the checks of steps 12 and 13 share: the model, the kinds of case, the comparisons.

The model is the tiny GPT-2 in ``checks/data/tiny-gpt2``, loaded with the reference
``load_pretrained`` once per check (``ctx.model``). Three kinds of case:

* ``Greedy``: the ids must equal the reference's exactly;
* ``Seeded``: the same seed twice gives the same ids, another seed other ids;
* ``Sampled``: many one-token draws (seeds 0, 1, 2, …) must follow the distribution the
  knobs ask for, computed exactly from the reference's logits: never a token outside it,
  and frequencies within a chi-square bound (a 5-sigma tail, so a right answer passes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_PROMPT = (5, 17, 200, 41)  # its next-token distribution is spread over many tokens
# 60 tokens: with 4 new ones the text fills the tiny GPT-2's whole context (64 positions).
CONTEXT_PROMPT = tuple((7 * i + 3) % 301 for i in range(60))


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Greedy:
    prompt: tuple[int, ...]
    new: int

    def label(self, function: str) -> str:
        return f"{function}(prompt of {len(self.prompt)}, {self.new} new, greedy)"


@dataclass(frozen=True)
class Seeded:
    prompt: tuple[int, ...]
    new: int
    seeds: tuple[int, int] = (3, 4)
    knobs: dict = field(default_factory=lambda: {"temperature": 1.0}, hash=False)

    def label(self, function: str) -> str:
        return (
            f"{function}(…, temperature=1.0, seed={self.seeds[0]}) twice, then seed={self.seeds[1]}"
        )


@dataclass(frozen=True)
class Sampled:
    draws: int
    knobs: dict = field(hash=False)
    prompt: tuple[int, ...] = SAMPLE_PROMPT

    def label(self, function: str) -> str:
        knobs = ", ".join(f"{k}={v}" for k, v in self.knobs.items())
        return f"{function}(…, 1 new, {knobs}), {self.draws} seeds"


# --------------------------------------------------------------------------- running


def run_case(generate, model, case):
    """The learner's (or the reference's) answer to one case."""
    if isinstance(case, Greedy):
        return generate(model, list(case.prompt), case.new)
    if isinstance(case, Seeded):
        a, b = (
            generate(model, list(case.prompt), case.new, seed=case.seeds[0], **case.knobs)
            for _ in range(2)
        )
        c = generate(model, list(case.prompt), case.new, seed=case.seeds[1], **case.knobs)
        return (a, b, c)
    outputs = [
        generate(model, list(case.prompt), 1, seed=s, **case.knobs) for s in range(case.draws)
    ]
    return outputs


@dataclass
class Distribution:
    """What one-token draws should follow, and the logits it came from."""

    probs: np.ndarray
    logits: np.ndarray
    knobs: dict
    prompt: tuple[int, ...]


def distribution(logits: np.ndarray, temperature: float, top_k=None, top_p=None) -> np.ndarray:
    """The exact probabilities of the next token under the knobs (in float64)."""
    z = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < z.size:
        order = np.argsort(-z, kind="stable")
        z[order[top_k:]] = -np.inf
    probs = np.exp(z - z.max())
    probs /= probs.sum()
    if top_p is not None and top_p < 1:
        order = np.argsort(-probs, kind="stable")
        before = np.cumsum(probs[order]) - probs[order]
        probs[order[before >= top_p]] = 0.0
        probs /= probs.sum()
    return probs


def expected_distribution(case: Sampled, ctx) -> Distribution:
    from gpt2.compiled import logits_function

    logits = logits_function(ctx.model)(list(case.prompt)).astype(np.float64)
    return Distribution(distribution(logits, **case.knobs), logits, case.knobs, case.prompt)


# --------------------------------------------------------------------------- comparing


def _ids(value) -> list | None:
    try:
        ids = [int(i) for i in value]
    except (TypeError, ValueError):
        return None
    return ids if all(float(i) == float(j) for i, j in zip(ids, value, strict=True)) else None


def compare(actual, expected, tol=None) -> tuple[bool, str]:
    if isinstance(expected, Distribution):
        return _compare_draws(actual, expected)
    if isinstance(expected, Seeded):
        return _compare_seeded(actual)
    if isinstance(expected, tuple):  # a seeded case's three answers (a known mistake's)
        same = isinstance(actual, tuple) and list(map(list, actual)) == list(map(list, expected))
        return same, "the same three answers" if same else "other answers"
    ids = _ids(actual) if isinstance(actual, (list, tuple)) else None
    if ids is None:
        return False, f"returned {type(actual).__name__}, expected a list of ints"
    if ids == list(expected):
        return True, f"{len(ids)} ids, all equal: {_show(ids)}"
    if len(ids) != len(expected):
        return (
            False,
            f"{len(ids)} ids, expected {len(expected)}: yours {_show(ids)}, expected {_show(expected)}",
        )
    first = next(i for i, (a, b) in enumerate(zip(ids, expected, strict=True)) if a != b)
    return False, f"differ from id {first} on: yours {_show(ids)}, expected {_show(expected)}"


def _show(ids, limit: int = 12) -> str:
    ids = list(ids)
    return "[" + ", ".join(map(str, ids[:limit])) + (", …]" if len(ids) > limit else "]")


def _compare_seeded(actual) -> tuple[bool, str]:
    a, b, c = (list(x) for x in actual)
    if a != b:
        return False, f"the same seed gave different ids: {_show(a)} and {_show(b)}"
    if a == c:
        return False, f"another seed gave the very same ids {_show(a)}: is the seed used?"
    return True, "the same seed repeats the ids, another seed changes them"


def counts(outputs, vocab_size: int) -> tuple[np.ndarray | None, str]:
    """Count the drawn tokens, or say why the outputs are not one new id each."""
    lengths = {len(o) for o in outputs}
    if lengths != {1}:
        return None, f"generate(…, max_new_tokens=1) returned {sorted(lengths)} ids, expected 1"
    tokens = np.array([int(o[0]) for o in outputs])
    if tokens.min() < 0 or tokens.max() >= vocab_size:
        return None, f"drew token {int(tokens.max())}, outside the vocabulary"
    return np.bincount(tokens, minlength=vocab_size), ""


def chi_square(observed: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    """Pearson's statistic (rare tokens pooled) and its 5-sigma limit (Wilson-Hilferty)."""
    n = observed.sum()
    big = probs * n >= 5
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(probs[big] * n, probs[~big].sum() * n)
    keep = exp > 0
    stat = float(np.sum((obs[keep] - exp[keep]) ** 2 / exp[keep]))
    df = max(int(keep.sum()) - 1, 1)
    limit = df * (1 - 2 / (9 * df) + 5.0 * np.sqrt(2 / (9 * df))) ** 3
    return stat, limit


def fits(observed: np.ndarray, probs: np.ndarray) -> bool:
    if np.any((probs == 0) & (observed > 0)):
        return False
    stat, limit = chi_square(observed, probs)
    return stat <= limit


def _compare_draws(actual, expected: Distribution) -> tuple[bool, str]:
    observed, why = counts(actual, expected.probs.size)
    if observed is None:
        return False, why
    outside = np.flatnonzero((expected.probs == 0) & (observed > 0))
    if outside.size:
        return False, (
            f"drew token {int(outside[0])} ({int(observed[outside].sum())} times), which these "
            f"settings rule out; allowed: {int((expected.probs > 0).sum())} tokens"
        )
    stat, limit = chi_square(observed, expected.probs)
    top = np.argsort(-expected.probs)[:3]
    shares = ", ".join(
        f"token {int(t)}: {observed[t] / observed.sum():.2f} (expected {expected.probs[t]:.2f})"
        for t in top
    )
    if stat > limit:
        return (
            False,
            f"frequencies do not follow the distribution (chi² {stat:.0f} > {limit:.0f}); {shares}",
        )
    return True, f"frequencies follow the distribution (chi² {stat:.0f} ≤ {limit:.0f}); {shares}"


# --------------------------------------------------------------------------- known mistakes


def fits_instead(make_probs):
    """A detector: the draws fit ``make_probs(logits, knobs)`` (None: not this case)."""

    def detect(actual, expected) -> bool:
        if not isinstance(expected, Distribution):
            return False
        probs = make_probs(expected.logits, dict(expected.knobs))
        if probs is None:
            return False
        observed, _ = counts(actual, expected.probs.size)
        return observed is not None and fits(observed, probs)

    return detect
