"""What the checks of steps 12 and 13 share: the model, the kinds of case, the comparisons.

The model is the tiny GPT-2 in ``checks/data/tiny-gpt2``, loaded with the reference
``load_pretrained`` once per check (``ctx.model``). Three kinds of case:

* ``Greedy``: the ids must equal the reference's exactly;
* ``Seeded``: the same seed twice gives the same ids, another seed other ids;
* ``Sampled``: many one-token draws (seeds 0, 1, 2, …) must follow the distribution the
  knobs ask for, the exact one the reference's ``next_token`` draws from
  (``drawn_from``): never a token outside it, and frequencies within a chi-square bound
  (a 5-sigma tail, so a right answer passes). A known mistake's distribution is found
  the same way, from the reference with the mistake made.
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
    """What one-token draws should follow: the exact probabilities of the drawn token, and
    how many ids each answer holds (1, unless a known mistake's loop is off)."""

    probs: np.ndarray
    length: int = 1


class _Recorder:
    """Stands in for ``np.random.Generator``: keeps the probabilities it is asked to draw
    with, and draws nothing."""

    probs = None

    def choice(self, size, p=None):
        self.probs = np.asarray(p, dtype=np.float64)
        return 0


def drawn_from(ns, model, case: Sampled) -> Distribution:
    """The exact distribution that the draws of ``ns`` (the reference, or the reference
    with a known mistake made) follow in ``case``: what its ``next_token`` hands the
    generator, from the model's logits; and the length of its answers."""
    from gpt2.compiled import logits_function

    recorder = _Recorder()
    ns.next_token(logits_function(model)(list(case.prompt)), recorder, **case.knobs)
    length = len(ns.generate(model, list(case.prompt), 1, seed=0, **case.knobs))
    return Distribution(recorder.probs, length)


# --------------------------------------------------------------------------- comparing


def _ids(value) -> list | None:
    try:
        ids = [int(i) for i in value]
    except (TypeError, ValueError):
        return None
    return ids if all(float(i) == float(j) for i, j in zip(ids, value, strict=True)) else None


def compare(actual, expected, tol=None) -> tuple[bool, str]:
    if isinstance(expected, Distribution):
        if isinstance(actual, Distribution):  # a known mistake's against the reference's
            same = actual.length == expected.length and np.allclose(
                actual.probs, expected.probs, rtol=0, atol=1e-12
            )
            return same, "the same distribution" if same else "another distribution"
        return _compare_draws(actual, expected)
    if isinstance(expected, (Seeded, tuple)):  # the verdict counts, not the random ids
        verdict, detail = _seeded(actual)
        return verdict == ("ok" if isinstance(expected, Seeded) else _seeded(expected)[0]), detail
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


def _seeded(answer) -> tuple[str, str]:
    """A seeded case's verdict ("ok", "unrepeated" or "unchanged"), and what it means."""
    a, b, c = (list(x) for x in answer)
    if a != b:
        return "unrepeated", f"the same seed gave different ids: {_show(a)} and {_show(b)}"
    if a == c:
        return "unchanged", f"another seed gave the very same ids {_show(a)}: is the seed used?"
    return "ok", "the same seed repeats the ids, another seed changes them"


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


def _compare_draws(actual, expected: Distribution) -> tuple[bool, str]:
    if not all(isinstance(o, (list, tuple)) for o in actual):
        return False, "returned something other than a list of ids"
    lengths = sorted({len(o) for o in actual})
    if lengths != [expected.length]:
        return (
            False,
            f"generate(…, max_new_tokens=1) returned {lengths} ids, expected {expected.length}",
        )
    if expected.length != 1:  # a known mistake's loop: its answers are known by their length
        return True, f"{expected.length} ids each"
    tokens = np.array([int(o[0]) for o in actual])
    vocab_size = expected.probs.size
    if tokens.min() < 0 or tokens.max() >= vocab_size:
        return False, f"drew token {int(tokens.max())}, outside the vocabulary"
    observed = np.bincount(tokens, minlength=vocab_size)
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
