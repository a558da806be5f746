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
    # TODO: one token id (an int) from one position's logits [vocab_size]: greedy at
    # temperature 0; else a draw shaped by the temperature, then top_k, then top_p.
    # About 15 lines.
    raise NotImplementedError("next_token")
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
    # TODO: yield max_new_tokens new ids, each chosen from the logits of the text so far and
    # then appended to it; the same seed must give the same ids. About 6 lines.
    raise NotImplementedError("stream")
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
