"""Step 12 · Text generation: greedy ids exactly, seeds repeatable, samples distributed right.

Everything runs the learner's ``generate`` on the tiny fixture GPT-2 (see
``checks/specs/generation.py``). The reference answers a sampled case with the exact
distribution its draws follow, and so does each known mistake, the reference with a few
lines changed: the learner's draws are tested against both.
"""

from __future__ import annotations

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


def run(ns, case, ctx):
    if isinstance(case, g.Sampled) and ctx.learner is None:  # the reference, or a mistake
        return g.drawn_from(ns, ctx.model, case)
    return g.run_case(ns.generate, ctx.model, case)


SPEC = Spec(
    cases=CASES,
    run=run,
    keep_expected=True,  # they come from step 12's compiled graph
    compare=g.compare,
    describe=lambda case: case.label("generate"),
    mistakes=(
        Mistake(
            "returns-prompt",
            "Return only the new ids: the caller already has the prompt "
            "(ids[len(prompt_ids):], or collect the new tokens as you go).",
            change={
                "    ids = list(prompt_ids)\n": "    ids = list(prompt_ids)\n    yield from ids\n"
            },
        ),
        Mistake(
            "not-appended",
            "Every new token is the same: append each chosen token to the ids, so the next "
            "run of the model sees the text so far.",
            change={"ids.append(token)": "ids + [token]"},
        ),
        Mistake(
            "one-too-many",
            "You return one id more than max_new_tokens: loop exactly max_new_tokens times.",
            change={"for _ in range(max_new_tokens):": "for _ in range(max_new_tokens + 1):"},
        ),
        Mistake(
            "one-too-few",
            "You return one id fewer than max_new_tokens: loop exactly max_new_tokens times.",
            change={"for _ in range(max_new_tokens):": "for _ in range(max_new_tokens - 1):"},
        ),
        Mistake(
            "seed-unused",
            "The same seed gave different ids. Make one generator per call, "
            "rng = np.random.default_rng(seed), and draw every token from it.",
            change={"np.random.default_rng(seed)": "np.random.default_rng()"},
        ),
        Mistake(
            "no-temperature",
            "Your draws follow softmax(logits), whatever the temperature: divide the logits "
            "by the temperature before the softmax.",
            change={"logits.astype(np.float64) / temperature": "logits.astype(np.float64)"},
        ),
        Mistake(
            "temperature-multiplied",
            "Your draws follow softmax(logits × temperature): divide by the temperature "
            "instead (a low temperature must sharpen the distribution).",
            change={
                "logits.astype(np.float64) / temperature": "logits.astype(np.float64) * temperature"
            },
        ),
        Mistake(
            "top-k-minus-one",
            "Your top-k keeps k - 1 tokens: keep every logit >= the k-th largest "
            "(np.partition(logits, -k)[-k]).",
            change={"np.where(logits < kth_best": "np.where(logits <= kth_best"},
        ),
        Mistake(
            "top-k-plus-one",
            "Your top-k keeps k + 1 tokens: the k-th largest logit is np.partition(logits, -k)[-k].",
            change={
                "np.partition(logits, -top_k)[-top_k]": "np.partition(logits, -top_k - 1)[-top_k - 1]"
            },
        ),
        Mistake(
            "top-k-ignored",
            "Your draws ignore top_k: set every logit below the k-th largest to -inf before "
            "the softmax.",
            change={"if top_k is not None and top_k < logits.size:": "if False:"},
        ),
        Mistake(
            "nucleus-without-crossing",
            "Your top-p drops the token that brings the total to top_p. The nucleus is the "
            "smallest set holding at least top_p: keep a token while the ones before it hold "
            "less than top_p.",
            change={
                "dropped = order[before >= top_p]": "dropped = order[before + probs[order] > top_p]"
            },
        ),
        Mistake(
            "top-p-before-temperature",
            "Your nucleus is chosen before the temperature is applied. The order is: divide "
            "by the temperature, then top_k, then the softmax, and the nucleus of that "
            "distribution; a temperature changes which tokens make up top_p.",
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
            change={"if top_p is not None and top_p < 1:": "if False:"},
        ),
    ),
    hint="Greedy: np.argmax of the last position's logits. Sampling: logits / temperature, "
    "then top-k, softmax, top-p, and one rng.choice(len(probs), p=probs).",
)
