"""Step 12 · Text generation: greedy ids exactly, seeds repeatable, samples distributed right.

Everything runs the learner's ``generate`` on the tiny fixture GPT-2 (see
``checks/specs/generation.py``); the known mistakes are recognised from the ids or from the
distribution the draws follow.
"""

from __future__ import annotations

import numpy as np

from checks.spec import Mistake, Spec
from checks.specs import generation as g

PROMPT = (287, 257, 263, 89, 272, 294, 76)
CASES = (
    g.Greedy(PROMPT, 12),
    g.Greedy((0,), 8),
    g.Greedy(PROMPT, 0),
    g.Greedy(g.CONTEXT_PROMPT, 4),  # the last new token takes the context's last position
    g.Seeded(g.SAMPLE_PROMPT, 10),
    g.Sampled(300, {"temperature": 0.6}),
    g.Sampled(200, {"temperature": 1.0, "top_k": 4}),
    g.Sampled(200, {"temperature": 1.0, "top_p": 0.5}),
    # The edges `python -m gpt2` lets through: top_k past the vocabulary, top_p = 1.
    g.Sampled(100, {"temperature": 1.0, "top_k": 1000}),
    g.Sampled(100, {"temperature": 1.0, "top_p": 1.0}),
    # The knobs together: their order matters (temperature, then top_k, then top_p).
    g.Sampled(300, {"temperature": 0.5, "top_p": 0.7}),
    g.Sampled(300, {"temperature": 1.6, "top_k": 6, "top_p": 0.8}),
)


GREEDY_PROMPTS = [list(case.prompt) for case in CASES if isinstance(case, g.Greedy)]


def run(ns, case, ctx):
    return g.run_case(ns.generate, ctx.model, case)


def expected(case, ctx):
    if isinstance(case, g.Sampled):  # the exact distribution, from the reference's logits
        return g.expected_distribution(case, ctx)
    if isinstance(case, g.Seeded):  # nothing to compare: the answer must repeat itself
        return case
    from solutions.solution_12 import generate

    return g.run_case(generate, ctx.model, case)


# ---------------------------------------------------------------- known mistakes


def _lengths(actual) -> set[int]:
    return {len(o) for o in actual} if isinstance(actual, (list, tuple)) else set()


def _on_ids(greedy, drawn):
    """A detector from two tests: one for greedy ids, one for the one-token draws."""

    def detect(actual, expected):
        if isinstance(expected, g.Seeded) or not isinstance(actual, (list, tuple)):
            return False
        if isinstance(expected, g.Distribution):
            return all(isinstance(o, (list, tuple)) for o in actual) and drawn(actual, expected)
        return greedy(list(actual), list(expected))

    return detect


returns_prompt = _on_ids(
    lambda actual, expected: (
        len(actual) > len(expected)
        and actual[len(actual) - len(expected) :] == expected
        and actual[: len(actual) - len(expected)] in GREEDY_PROMPTS
    ),
    lambda actual, expected: all(list(o[:-1]) == list(expected.prompt) for o in actual),
)
not_appended = _on_ids(
    lambda actual, expected: (
        len(expected) > 1 and actual == [expected[0]] * len(expected) != expected
    ),
    lambda actual, expected: False,
)
one_too_many = _on_ids(
    lambda actual, expected: (
        len(actual) == len(expected) + 1 and actual[: len(expected)] == expected
    ),
    lambda actual, expected: _lengths(actual) == {2},
)
one_too_few = _on_ids(
    lambda actual, expected: len(actual) + 1 == len(expected) and expected[: len(actual)] == actual,
    lambda actual, expected: _lengths(actual) == {0},
)


def seed_unused(actual, expected):
    return isinstance(expected, g.Seeded) and list(actual[0]) != list(actual[1])


def _scaled(knobs) -> bool:
    return knobs.get("temperature", 1.0) != 1.0


def _no_temperature(logits, knobs):
    if not _scaled(knobs):
        return None
    return g.distribution(logits, 1.0, top_k=knobs.get("top_k"), top_p=knobs.get("top_p"))


def _temperature_multiplied(logits, knobs):
    if not _scaled(knobs):
        return None
    t = knobs["temperature"]
    return g.distribution(logits * t, 1.0, top_k=knobs.get("top_k"), top_p=knobs.get("top_p"))


def _top_k(shift: int):
    def probs(logits, knobs):
        if not knobs.get("top_k"):
            return None
        return g.distribution(
            logits, knobs["temperature"], top_k=knobs["top_k"] + shift, top_p=knobs.get("top_p")
        )

    return probs


def _nucleus_without_crossing(logits, knobs):
    if not knobs.get("top_p"):
        return None
    probs = g.distribution(logits, knobs["temperature"], top_k=knobs.get("top_k"))
    order = np.argsort(-probs, kind="stable")
    inside = np.cumsum(probs[order]) <= knobs["top_p"]
    inside[0] = True  # at least one token
    wrong = np.zeros_like(probs)
    wrong[order[inside]] = probs[order[inside]]
    return wrong / wrong.sum()


def _top_p_ignored(logits, knobs):
    if not knobs.get("top_p"):
        return None
    return g.distribution(logits, knobs["temperature"], top_k=knobs.get("top_k"))


def _top_k_ignored(logits, knobs):
    if not knobs.get("top_k"):
        return None
    return g.distribution(logits, knobs["temperature"], top_p=knobs.get("top_p"))


def _top_p_before_temperature(logits, knobs):
    """The nucleus chosen on the unscaled distribution, the temperature applied after."""
    if not knobs.get("top_p") or not _scaled(knobs):
        return None
    kept = g.distribution(logits, 1.0, top_k=knobs.get("top_k"), top_p=knobs["top_p"]) > 0
    scaled = g.distribution(logits, knobs["temperature"], top_k=knobs.get("top_k"))
    wrong = np.where(kept, scaled, 0.0)
    return wrong / wrong.sum()


SPEC = Spec(
    cases=CASES,
    run=run,
    expected=expected,
    keep_expected=True,  # they come from step 12's compiled graph
    compare=g.compare,
    describe=lambda case: case.label("generate"),
    mistakes=(
        Mistake(
            "returns-prompt",
            "Return only the new ids: the caller already has the prompt "
            "(ids[len(prompt_ids):], or collect the new tokens as you go).",
            detect=returns_prompt,
            change={
                "    ids = list(prompt_ids)\n": "    ids = list(prompt_ids)\n    yield from ids\n"
            },
        ),
        Mistake(
            "not-appended",
            "Every new token is the same: append each chosen token to the ids, so the next "
            "run of the model sees the text so far.",
            detect=not_appended,
            change={"ids.append(token)": "ids + [token]"},
        ),
        Mistake(
            "one-too-many",
            "You return one id more than max_new_tokens: loop exactly max_new_tokens times.",
            detect=one_too_many,
            change={"for _ in range(max_new_tokens):": "for _ in range(max_new_tokens + 1):"},
        ),
        Mistake(
            "one-too-few",
            "You return one id fewer than max_new_tokens: loop exactly max_new_tokens times.",
            detect=one_too_few,
            change={"for _ in range(max_new_tokens):": "for _ in range(max_new_tokens - 1):"},
        ),
        Mistake(
            "seed-unused",
            "The same seed gave different ids. Make one generator per call, "
            "rng = np.random.default_rng(seed), and draw every token from it.",
            detect=seed_unused,
            change={"np.random.default_rng(seed)": "np.random.default_rng()"},
        ),
        Mistake(
            "no-temperature",
            "Your draws follow softmax(logits), whatever the temperature: divide the logits "
            "by the temperature before the softmax.",
            detect=g.fits_instead(_no_temperature),
            change={"logits.astype(np.float64) / temperature": "logits.astype(np.float64)"},
        ),
        Mistake(
            "temperature-multiplied",
            "Your draws follow softmax(logits × temperature): divide by the temperature "
            "instead (a low temperature must sharpen the distribution).",
            detect=g.fits_instead(_temperature_multiplied),
            change={
                "logits.astype(np.float64) / temperature": "logits.astype(np.float64) * temperature"
            },
        ),
        Mistake(
            "top-k-minus-one",
            "Your top-k keeps k - 1 tokens: keep every logit >= the k-th largest "
            "(np.partition(logits, -k)[-k]).",
            detect=g.fits_instead(_top_k(-1)),
            change={"np.where(logits < kth_best": "np.where(logits <= kth_best"},
        ),
        Mistake(
            "top-k-plus-one",
            "Your top-k keeps k + 1 tokens: the k-th largest logit is np.partition(logits, -k)[-k].",
            detect=g.fits_instead(_top_k(+1)),
            change={
                "np.partition(logits, -top_k)[-top_k]": "np.partition(logits, -top_k - 1)[-top_k - 1]"
            },
        ),
        Mistake(
            "top-k-ignored",
            "Your draws ignore top_k: set every logit below the k-th largest to -inf before "
            "the softmax.",
            detect=g.fits_instead(_top_k_ignored),
            change={"if top_k is not None and top_k < logits.size:": "if False:"},
        ),
        Mistake(
            "nucleus-without-crossing",
            "Your top-p drops the token that brings the total to top_p. The nucleus is the "
            "smallest set holding at least top_p: keep a token while the ones before it hold "
            "less than top_p.",
            detect=g.fits_instead(_nucleus_without_crossing),
            change={
                "dropped = order[before >= top_p]": "dropped = order[before + probs[order] > top_p]"
            },
        ),
        Mistake(
            "top-p-before-temperature",
            "Your nucleus is chosen before the temperature is applied. The order is: divide "
            "by the temperature, then top_k, then the softmax, and the nucleus of that "
            "distribution; a temperature changes which tokens make up top_p.",
            detect=g.fits_instead(_top_p_before_temperature),
            change={
                "    logits = logits.astype(np.float64) / temperature\n": "    logits = logits.astype(np.float64)\n",
                "    return int(rng.choice(probs.size, p=probs))\n": (
                    "    scaled = np.exp(logits / temperature - (logits / temperature).max())\n"
                    "    probs = np.where(probs > 0, scaled, 0.0)\n"
                    "    probs /= probs.sum()\n"
                    "    return int(rng.choice(probs.size, p=probs))\n"
                ),
            },
        ),
        Mistake(
            "top-p-ignored",
            "Your draws ignore top_p: after the softmax, zero every token outside the nucleus "
            "and renormalise.",
            detect=g.fits_instead(_top_p_ignored),
            change={"if top_p is not None and top_p < 1:": "if False:"},
        ),
    ),
    hint="Greedy: np.argmax of the last position's logits. Sampling: logits / temperature, "
    "then top-k, softmax, top-p, and one rng.choice(len(probs), p=probs).",
)
