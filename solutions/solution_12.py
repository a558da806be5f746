"""Step 12 · Text generation.

The model only ever answers one question: given these tokens, how likely is each token of
the vocabulary to come next? Generating text is asking it again and again: pick one token
from the last position's logits, append it, and run the model on the longer sequence.

How to pick is a choice. Greedy decoding takes the most likely token every time: the same
prompt always gives the same text, often repetitive. Sampling draws the token at random
from the model's distribution, reshaped by three knobs:

* ``temperature`` divides the logits before the softmax: below 1 sharpens the
  distribution (towards greedy), above 1 flattens it (more surprising text);
* ``top_k`` keeps only the k most likely tokens;
* ``top_p`` keeps the smallest set of most likely tokens whose probabilities add up to
  at least p (the "nucleus"), however many that is.

A ``seed`` makes the draws repeatable: the same seed gives the same text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from gpt2.compiled import logits_function  # compile once, then ids -> last logits
from gpt2.sampling import check_arguments  # clear errors for impossible requests
from solutions.solution_10 import GPT2LMHeadModel


# ANCHOR: next_token
def next_token(
    logits: np.ndarray,
    rng: np.random.Generator,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> int:
    """Choose the next token from one position's logits (a [vocab_size] array)."""
    # ---- your code starts here ----
    if temperature == 0:
        return int(np.argmax(logits))  # greedy: the single most likely token
    logits = logits.astype(np.float64) / temperature
    if top_k is not None and top_k < logits.size:
        kth_best = np.partition(logits, -top_k)[-top_k]
        logits = np.where(logits < kth_best, -np.inf, logits)
    probs = np.exp(logits - logits.max())  # softmax; subtracting the max avoids overflow
    probs /= probs.sum()
    if top_p is not None and top_p < 1:
        order = np.argsort(-probs, kind="stable")  # most likely first
        before = np.cumsum(probs[order]) - probs[order]  # probability mass ahead of each
        # Keep a token while the ones ahead of it hold less than top_p: the first token
        # that reaches top_p is kept, everything after it is dropped.
        dropped = order[before >= top_p]
        probs[dropped] = 0.0
        probs /= probs.sum()
    return int(rng.choice(probs.size, p=probs))
    # ---- your code ends here ----


# ANCHOR_END: next_token


# ANCHOR: stream
def stream(
    model: GPT2LMHeadModel,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> Iterator[int]:
    """Yield ``max_new_tokens`` new token ids, each as soon as it is chosen."""
    last_logits = logits_function(model)  # compiled once per model, for any length
    # ---- your code starts here ----
    rng = np.random.default_rng(seed)  # one generator for the whole text: repeatable
    ids = list(prompt_ids)
    for _ in range(max_new_tokens):
        token = next_token(last_logits(ids), rng, temperature=temperature, top_k=top_k, top_p=top_p)
        ids.append(token)  # the next run sees the whole text so far
        yield token
    # ---- your code ends here ----


# ANCHOR_END: stream


# ANCHOR: generate
def generate(
    model: GPT2LMHeadModel,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> list[int]:
    """The ``max_new_tokens`` ids that follow ``prompt_ids`` (the prompt is not repeated)."""
    check_arguments(model, prompt_ids, max_new_tokens, temperature, top_k, top_p)
    return list(
        stream(
            model,
            prompt_ids,
            max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
    )


# ANCHOR_END: generate
