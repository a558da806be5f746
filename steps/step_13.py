"""Step 13 · KV cache.

Step 12 runs the whole text through the model for every new token, although only the last
position's logits are used and the keys and values of the earlier tokens come out the same
each time: a token's key and value depend on that token and the ones before it, never on
what comes after. So keep them. The first run (the "prefill") reads the prompt and returns
every block's keys and values; each later run (a "decode" step) reads one new token, adds
its key and value to the cache, and attends to all of them.

The cache makes each step's work constant instead of growing with the text, and for GPT-2
small on a CPU turns generation from compute-bound into memory-bound: each step reads the
weights once, and little else.

One compiled graph serves both kinds of run: its inputs are the new token ids [1, seq] and
the cache [n_layer, 1, n_head, past_len, head_dim] (keys and values apart), with ``seq`` and
``past_len`` symbolic. The prefill passes an empty cache (past_len = 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from max.dtype import DType
from max.experimental import functional as F
from max.experimental.nn import ModuleList
from max.experimental.tensor import Tensor

from gpt2 import compiled  # compiling the cached twin, and the CPU weight layout
from gpt2.compiled import Cache, empty_cache
from gpt2.sampling import check_arguments
from solutions.solution_01 import GPT2Config
from solutions.solution_02 import causal_mask
from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_08 import GPT2Block
from solutions.solution_10 import GPT2LMHeadModel
from solutions.solution_12 import next_token


# ANCHOR: mask
def mask_with_past(seq_len, past_len, *, dtype: DType, device) -> Tensor:
    """Step 02's ``causal_mask(seq_len, past_len)``, for a symbolic ``past_len``.

    ``causal_mask`` needs ``past_len`` as a Python number, but in the compiled graph the
    cache length is symbolic. The matrix is simple enough to assemble: every new token
    sees all ``past_len`` cached keys (zeros), and among the new tokens the usual causal
    mask applies.
    """
    seen = F.zeros([seq_len, past_len], dtype=dtype, device=device)
    return F.concat([seen, causal_mask(seq_len, 0, dtype=dtype, device=device)], axis=1)


# ANCHOR_END: mask


# ANCHOR: cached_attention
class GPT2CachedAttention(GPT2MultiHeadAttention):
    """Step 07's attention, reading and extending a cache of keys and values."""

    def forward(
        self, hidden_states: Tensor, past_key: Tensor, past_value: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """[batch, seq, n_embd] and the cache [batch, n_head, past_len, head_dim] (×2) →
        the output [batch, seq, n_embd] and the cache, now past_len + seq long."""
        # ---- your code starts here ----
        # TODO: as step 07's forward, but the new keys and values go after the cached ones and
        # every new query attends to all of them (the mask: mask_with_past); return the output
        # and the longer cache. About 10 lines.
        raise NotImplementedError("GPT2CachedAttention.forward")
        # ---- your code ends here ----


# ANCHOR_END: cached_attention


class GPT2CachedBlock(GPT2Block):
    """Step 08's block around the cached attention; the same parameter names."""

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.attn = GPT2CachedAttention(config)

    def forward(self, hidden_states: Tensor, past_key: Tensor, past_value: Tensor):
        attended, key, value = self.attn(self.ln_1(hidden_states), past_key, past_value)
        hidden_states = hidden_states + attended
        hidden_states = hidden_states + self.mlp(self.ln_2(hidden_states))
        return hidden_states, key, value


# ANCHOR: cached_model
class GPT2CachedLMHeadModel(GPT2LMHeadModel):
    """Step 10's model with a cache: the same parameters, so the same weights load.

    ``forward(input_ids [1, seq], past_keys, past_values)``, the caches shaped
    [n_layer, 1, n_head, past_len, head_dim], returns the logits of the last position
    [1, vocab_size] and both caches, now past_len + seq long.
    """

    def __init__(self, config: GPT2Config):
        super().__init__(config)
        self.transformer.h = ModuleList([GPT2CachedBlock(config) for _ in range(config.n_layer)])

    def forward(self, input_ids: Tensor, past_keys: Tensor, past_values: Tensor):
        t = self.transformer
        seq, past_len = input_ids.shape[1], past_keys.shape[3]
        # ---- your code starts here ----
        # TODO: as step 09's forward, the positions continuing after the cached ones and each
        # block given its slice of the caches; the head on the last position only; return the
        # logits and both caches, each seq positions longer. About 10 lines.
        raise NotImplementedError("GPT2CachedLMHeadModel.forward")
        # ---- your code ends here ----


# ANCHOR_END: cached_model


# ANCHOR: stream_cached
def stream_cached(
    model: GPT2LMHeadModel,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> Iterator[int]:
    """Like step 12's ``stream``, but each new token costs one run on one token."""
    run = cached_function(model)  # (ids, cache) -> (last logits, cache)
    cache = empty_cache(model)
    # ---- your code starts here ----
    # TODO: as step 12's stream, but one run on the prompt fills the cache, and then each
    # new token is run on its own. About 7 lines.
    raise NotImplementedError("stream_cached")
    # ---- your code ends here ----


# ANCHOR_END: stream_cached


# ANCHOR: generate_cached
def generate_cached(
    model: GPT2LMHeadModel,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> list[int]:
    """``generate`` with a KV cache: greedy, the same ids; each token far cheaper."""
    check_arguments(model, prompt_ids, max_new_tokens, temperature, top_k, top_p)
    return list(
        stream_cached(
            model,
            prompt_ids,
            max_new_tokens,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
        )
    )


# ANCHOR_END: generate_cached


# ANCHOR: cached_function
def cached_function(
    model: GPT2LMHeadModel, cached_class: type | None = None
) -> Callable[[Sequence[int], Cache], tuple[np.ndarray, Cache]]:
    """``(ids, cache) -> (logits of the last position, longer cache)``, with this step's
    cached model (or ``cached_class``) compiled once per model, ``model``'s weights loaded
    into it."""
    return compiled.cached_function(model, cached_class or GPT2CachedLMHeadModel)


# ANCHOR_END: cached_function
