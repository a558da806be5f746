"""A faster decode for the course's GPT-2: a cache of fixed capacity, written in place.

Step 13's cache is textbook-plain: every decode run concatenates the new key and value to
the cached ones and returns the longer cache, so each step copies the whole cache (an
inner-axis concat on MAX's CPU), and the cost per token grows with the text. This module
keeps the same model and weights and changes only how the cache is carried:

* The cache is two NumPy arrays of fixed capacity, keys [n_layer, n_head, capacity,
  head_dim] and values transposed, handed to MAX without a copy (DLPack). A decode run reads them and returns only the new
  token's keys and values, [n_layer, n_head, 1, head_dim], which are written into the
  arrays at the token's position. Nothing grows, nothing is copied but one row per layer.
* Attention runs over the whole capacity with the unused positions masked (arithmetic,
  no ``where``), and the new token's own score joins the softmax without a concatenation:
  the maximum, the exponentials and their sum are taken over both parts. Both products
  put the cache on the left (hence the values transposed).
* The capacity is the next power of two that holds prompt and answer (at least 64), and
  the capacity axis is symbolic: one compiled graph serves every capacity.
* The prompt is read by step 13's cached model (one prefill run), whose cache is copied in.

Greedy, it chooses the ids ``generate_cached`` chooses; the book's step 13 chapter shows the
measured difference.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator, Sequence

import numpy as np
from max.driver import CPU
from max.dtype import DType
from max.experimental import functional as F
from max.experimental.nn import Linear, ModuleList
from max.experimental.tensor import Tensor, TensorType, default_device

from gpt2 import compiled
from gpt2.checkpoint import build
from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_08 import GPT2Block
from solutions.solution_10 import GPT2LMHeadModel

MIN_CAPACITY = 64
_HIDDEN = 1e30  # subtracted from the scores of positions the cache does not hold yet


class _DecodeAttention(GPT2MultiHeadAttention):
    def forward(self, x: Tensor, keys: Tensor, values_t: Tensor, hidden: Tensor):
        """x [1, n_embd]; keys [n_head, capacity, head_dim] and the values transposed,
        [n_head, head_dim, capacity]; hidden [capacity, 1] (0 where the cache holds a token,
        1e30 elsewhere) → out [1, n_embd], k, v [n_head, 1, head_dim].

        Every product has the cache on the left and a column on the right, the order
        MAX's CPU kernels run fastest for one query (step 13's chapter measures it)."""
        n_embd = self.n_head * self.head_dim
        q, k, v = F.split(self.c_attn(x), [n_embd, n_embd, n_embd], axis=-1)
        q, k, v = (t.reshape([self.n_head, 1, self.head_dim]) for t in (q, k, v))
        scale = 1.0 / math.sqrt(self.head_dim)
        cached = (keys @ q.transpose(-1, -2)) * scale - hidden  # [n_head, capacity, 1]
        own = F.sum(q * k, axis=-1) * scale  # [n_head, 1, 1]
        top = F.max(F.max(cached, axis=-2), own)  # one softmax over both parts
        cached_w, own_w = F.exp(cached - top), F.exp(own - top)
        mixed = values_t @ cached_w  # [n_head, head_dim, 1]
        out = (mixed.transpose(-1, -2) + own_w * v) / (F.sum(cached_w, axis=-2) + own_w)
        return self.c_proj(out.reshape([1, n_embd])), k, v


class _DecodeBlock(GPT2Block):
    def __init__(self, config):
        super().__init__(config)
        self.attn = _DecodeAttention(config)

    def forward(self, x, keys, values_t, hidden):
        attended, k, v = self.attn(self.ln_1(x), keys, values_t, hidden)
        x = x + attended
        return x + self.mlp(self.ln_2(x)), k, v


class DecodeModel(GPT2LMHeadModel):
    """The model for one decode run: step 10's parameters, so the same weights load.

    ``forward(token [1], position [1], keys, values_t)``, the keys [n_layer, n_head,
    capacity, head_dim] and the values transposed [n_layer, n_head, head_dim, capacity],
    holding ``position`` tokens, returns the logits [1, vocab_size] and the token's keys
    and values [n_layer, n_head, 1, head_dim].
    """

    def __init__(self, config):
        super().__init__(config)
        self.transformer.h = ModuleList([_DecodeBlock(config) for _ in range(config.n_layer)])

    def forward(self, token: Tensor, position: Tensor, keys: Tensor, values_t: Tensor):
        t = self.transformer
        x = t.wte(token) + t.wpe(position)  # [1, n_embd]
        capacity = keys.shape[2]
        slots = F.arange(0, capacity, 1, out_dim=capacity, dtype=DType.int64, device=token.device)
        hidden = (F.cast(slots >= position, DType.float32) * _HIDDEN).reshape([capacity, 1])
        new_keys, new_values = [], []
        for i, block in enumerate(t.h):
            x, k, v = block(x, keys[i], values_t[i], hidden)
            new_keys.append(k)
            new_values.append(v)
        return self.lm_head(t.ln_f(x)), F.stack(new_keys), F.stack(new_values)


class HalfWeightsLinear(compiled.WeightsFirstLinear):
    """``WeightsFirstLinear`` with its matrix in bfloat16: half the bytes to read per token.
    The row is rounded to bfloat16 for the product, the result is float32 again."""

    def forward(self, x: Tensor) -> Tensor:
        rows = F.cast(x.reshape([-1, x.shape[-1]]), DType.bfloat16)
        out = F.cast((self.weight @ rows.T).T, DType.float32) + self.bias
        return out.reshape([*x.shape[:-1], out.shape[-1]])


def half_weights(twin) -> set[str]:
    """Every ``Linear`` of ``twin`` (built lazily) turned into a ``HalfWeightsLinear``, its
    weight declared bfloat16; returns the weights' names."""
    names = set()
    with F.lazy(), default_device(twin.device):
        for prefix, module in twin.descendants:
            if isinstance(module, Linear):
                module.__class__ = HalfWeightsLinear
                module.weight = Tensor.zeros(list(module.weight.shape), dtype=DType.bfloat16)
                names.add(f"{prefix}.weight")
    return names


_DECODERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compile_decoder(model, weights: DType = DType.float32):
    """``DecodeModel`` holding ``model``'s weights, compiled (once per model and weight
    type). ``weights=DType.bfloat16``: the matrices of the Linear layers in bfloat16."""
    memo = _DECODERS.setdefault(model, {})
    if weights not in memo:
        config = model.config
        twin = build(DecodeModel, config, model.device)
        state = dict(model.parameters)
        if weights == DType.bfloat16:
            for name in half_weights(twin):
                state[name] = F.cast(state[name], DType.bfloat16)
        elif isinstance(model.device, CPU):
            compiled.weights_first(twin)
        head_dim = config.n_embd // config.n_head
        layers = [config.n_layer, config.n_head]
        keys = TensorType(DType.float32, [*layers, "capacity", head_dim], device=model.device)
        values_t = TensorType(DType.float32, [*layers, head_dim, "capacity"], device=model.device)
        one = TensorType(DType.int64, [1], device=model.device)
        memo[weights] = twin.compile(one, one, keys, values_t, weights=state)
    return memo[weights]


def capacity_for(length: int, context: int) -> int:
    """The smallest power of two ≥ ``length`` (and ≥ 64), at most the model's context."""
    return min(context, max(MIN_CAPACITY, 1 << max(length - 1, 0).bit_length()))


class FixedCache:
    """Keys [n_layer, n_head, capacity, head_dim] and values, stored transposed [n_layer,
    n_head, head_dim, capacity], of one text, in NumPy arrays that MAX reads in place (CPU)
    or copies (another device)."""

    def __init__(self, model, capacity: int):
        config = model.config
        layers = (config.n_layer, config.n_head)
        head_dim = config.n_embd // config.n_head
        self.keys = np.zeros((*layers, capacity, head_dim), dtype=np.float32)
        self.values = np.zeros((*layers, head_dim, capacity), dtype=np.float32)
        self.length = 0
        self.device = model.device
        self._views = None

    def tensors(self) -> tuple[Tensor, Tensor]:
        if isinstance(self.device, CPU):
            if self._views is None:  # DLPack: MAX reads the arrays themselves
                self._views = (Tensor.from_dlpack(self.keys), Tensor.from_dlpack(self.values))
            return self._views
        return compiled.to_device(self.keys, self.device), compiled.to_device(
            self.values, self.device
        )

    def fill(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Step 13's cache [n_layer, 1, n_head, length, head_dim] becomes the first positions."""
        n = keys.shape[3]
        self.keys[:, :, :n] = keys[:, 0]
        self.values[:, :, :, :n] = values[:, 0].transpose(0, 1, 3, 2)
        self.length = n

    def append(self, key: np.ndarray, value: np.ndarray) -> None:
        """One token's keys and values [n_layer, n_head, 1, head_dim], after the others."""
        self.keys[:, :, self.length] = key[:, :, 0]
        self.values[:, :, :, self.length] = value[:, :, 0]
        self.length += 1


def stream_fast(
    model,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    seed: int | None = None,
    cached_class: type | None = None,
    weights: DType = DType.float32,
    **knobs,
) -> Iterator[int]:
    """Step 13's ``stream_cached`` with the fixed cache: the same tokens, faster.
    ``knobs``: ``temperature``, ``top_k``, ``top_p``, as step 12's ``next_token`` takes them;
    ``weights=DType.bfloat16`` decodes with bfloat16 matrices (the prefill stays float32)."""
    from solutions import solution_12, solution_13

    cached_class = cached_class or solution_13.GPT2CachedLMHeadModel
    rng = np.random.default_rng(seed)
    prefill = compiled.cached_function(model, cached_class)
    logits, (keys, values) = prefill(list(prompt_ids), compiled.empty_cache(model))
    cache = FixedCache(
        model, capacity_for(len(prompt_ids) + max_new_tokens, compiled.context_length(model))
    )
    cache.fill(compiled.to_host(keys), compiled.to_host(values))
    decode = compile_decoder(model, weights)
    device = model.device
    for i in range(max_new_tokens):
        token = solution_12.next_token(logits, rng, **knobs)
        yield token
        if i + 1 == max_new_tokens:
            break
        token_t = compiled.to_device(np.array([token], dtype=np.int64), device)
        position = compiled.to_device(np.array([cache.length], dtype=np.int64), device)
        out, key, value = decode(token_t, position, *cache.tensors())
        cache.append(compiled.to_host(key), compiled.to_host(value))
        logits = compiled.to_host(out)[0]


def generate_fast(model, prompt_ids: Sequence[int], max_new_tokens: int, **knobs) -> list[int]:
    """``generate_cached`` with the fixed cache: greedy, the same ids."""
    from gpt2.sampling import check_arguments

    check_arguments(
        model,
        prompt_ids,
        max_new_tokens,
        knobs.get("temperature", 0.0),
        knobs.get("top_k"),
        knobs.get("top_p"),
    )
    return list(stream_fast(model, prompt_ids, max_new_tokens, **knobs))
