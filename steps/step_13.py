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
import weakref
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from max.driver import CPU
from max.dtype import DType
from max.experimental import functional as F
from max.experimental.nn import Linear, ModuleList
from max.experimental.tensor import Tensor, TensorType

from solutions.solution_01 import GPT2Config
from solutions.solution_02 import causal_mask
from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_08 import GPT2Block
from solutions.solution_10 import GPT2LMHeadModel
from solutions.solution_11 import build_model
from solutions.solution_12 import check_arguments, next_token, to_device, to_host


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
        # TODO: as step 07's forward, with a cache:
        #   1. q, k, v from self.c_attn (F.split), each through self.split_heads.
        #   2. key = past_key followed by k on the seq axis (F.concat([...], axis=2)); same
        #      for value.
        #   3. scores = q @ key.transpose(-1, -2) / sqrt(head_dim), plus
        #      mask_with_past(seq_len, past_len, dtype=..., device=...) with the sizes
        #      q.shape[2] and past_key.shape[2].
        #   4. softmax over the last axis, @ value, merge_heads, c_proj.
        #   Return (output, key, value): the caller keeps key and value for the next run.
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
        # TODO: as step 09's forward, with a cache:
        #   1. positions past_len, ..., past_len + seq - 1:
        #      F.arange(past_len, past_len + seq, 1, out_dim=seq, dtype=DType.int64,
        #               device=input_ids.device)
        #   2. hidden_states = t.wte(input_ids) + t.wpe(positions)
        #   3. for block i of t.h: hidden_states, key, value = block(hidden_states,
        #      past_keys[i], past_values[i]); collect the keys and the values.
        #   4. t.ln_f on the last position only (hidden_states[:, -1]), then self.lm_head.
        #   Return (logits, F.stack(keys), F.stack(values)).
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
    # TODO: one random generator from seed, as in step 12. Then:
    #   1. prefill: logits, cache = run(prompt_ids, cache)
    #   2. max_new_tokens times: token = next_token(logits, rng, ...); yield it; then,
    #      unless it was the last one, logits, cache = run([token], cache): only the new
    #      token goes in, the cache brings the rest.
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
            model, prompt_ids, max_new_tokens,
            temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
        )
    )
# ANCHOR_END: generate_cached


# --------------------------------------------------------------------------- compiling

Cache = tuple[Tensor, Tensor]  # keys and values, [n_layer, 1, n_head, past_len, head_dim]


def cache_shape(model: GPT2LMHeadModel, past_len) -> list:
    attn = model.transformer.h[0].attn
    return [len(model.transformer.h), 1, attn.n_head, past_len, attn.head_dim]


def empty_cache(model: GPT2LMHeadModel) -> Cache:
    """The cache before the prompt: no positions yet (past_len = 0)."""
    empty = np.zeros(cache_shape(model, 0), dtype=np.float32)
    return to_device(empty, model.device), to_device(empty, model.device)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# ANCHOR: cached_function
def cached_function(
    model: GPT2LMHeadModel, cached_class: type = GPT2CachedLMHeadModel
) -> Callable[[Sequence[int], Cache], tuple[np.ndarray, Cache]]:
    """Compile the cached twin of ``model`` once, with ``model``'s own weights.

    Returns ``(ids, cache) -> (logits of the last position, longer cache)``. The cache
    stays where the model runs (a MAX tensor), so nothing but the logits crosses to NumPy.
    """
    memo = _COMPILED.setdefault(model, {})  # one compiled twin per class, per model
    if cached_class not in memo:
        twin = build_model(config_of(model), model.device, cls=cached_class)
        if isinstance(model.device, CPU):
            weights_first(twin)  # the same numbers, faster on one row: see below
        cache_type = TensorType(DType.float32, cache_shape(model, "past_len"), device=model.device)
        ids_type = TensorType(DType.int64, [1, "seq"], device=model.device)
        memo[cached_class] = twin.compile(
            ids_type, cache_type, cache_type, weights=dict(model.parameters)
        )
    compiled = memo[cached_class]
    context = int(model.transformer.wpe.weight.shape[0])

    def run(ids: Sequence[int], cache: Cache) -> tuple[np.ndarray, Cache]:
        past_len = int(cache[0].shape[3])
        if past_len + len(ids) > context:
            raise ValueError(
                f"{past_len} cached positions + {len(ids)} new tokens exceed the model's "
                f"context of {context}: after the prefill, run one new token at a time"
            )
        ids_tensor = to_device(np.asarray([ids], dtype=np.int64), model.device)
        logits, keys, values = compiled(ids_tensor, *cache)
        return to_host(logits)[0], (keys, values)

    return run
# ANCHOR_END: cached_function


# ANCHOR: weights_first
class WeightsFirstLinear(Linear):
    """``Linear`` computed as (W @ xᵀ)ᵀ instead of x @ Wᵀ: the same numbers, another order.

    A decode step multiplies one row by every weight matrix. MAX 26.7's CPU matmul does
    that faster, as a rule, with W as the left operand: see the chapter's measurements.
    """

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape([-1, x.shape[-1]])  # [batch * seq, in]
        out = (self.weight @ rows.T).T + self.bias  # [out, rows] turned back to [rows, out]
        return out.reshape([*x.shape[:-1], out.shape[-1]])


def weights_first(model) -> None:
    """Turn every ``Linear`` of ``model`` into a ``WeightsFirstLinear``, weights kept."""
    for _, module in model.descendants:
        if type(module) is Linear:
            module.__class__ = WeightsFirstLinear
# ANCHOR_END: weights_first


def config_of(model: GPT2LMHeadModel) -> GPT2Config:
    """The config a loaded model was built with, read back from its shapes."""
    t = model.transformer
    block = t.h[0]
    vocab_size, n_embd = (int(d) for d in t.wte.weight.shape)
    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=int(t.wpe.weight.shape[0]),
        n_embd=n_embd,
        n_layer=len(t.h),
        n_head=block.attn.n_head,
        n_inner=int(block.mlp.c_fc.weight.shape[0]),
        layer_norm_epsilon=block.ln_1.eps,
    )
