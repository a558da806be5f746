"""A faster decode for the course's GPT-2: a cache of fixed capacity, written in place,
and guesses from a quantized copy of the weights that a float32 pass checks.

Step 13's cache is textbook-plain: every decode run concatenates the new key and value to
the cached ones and returns the longer cache, so each step copies the whole cache (an
inner-axis concat on MAX's CPU), and the cost per token grows with the text. This module
keeps the same model and weights and changes how the cache is carried and how many tokens
one pass over the weights decides:

* The cache is two NumPy arrays of fixed capacity, keys [n_layer, n_head, capacity,
  head_dim] and values transposed, handed to MAX without a copy (DLPack), a view per
  layer. A run reads them and returns only its new tokens' keys and values, which are
  written into the arrays at their positions. Nothing grows; nothing is copied but the
  new rows.
* Attention runs over the whole capacity with the unused positions masked (arithmetic,
  no ``where``), and the new tokens' own scores join the softmax without a concatenation:
  the maximum, the exponentials and their sum are taken over both parts. With one token,
  its products with the cache are sums along the cache's inner axis (hence the values
  transposed); with several, matrix products with the cache on the left.
* Graph shapes per phase, one class: a one-token graph for decoding (each weight matrix
  on the left of the product, MAX's faster order for one row), a graph of any number of
  tokens for the prompt and for checking drafts (``x @ Wᵀ``, faster for several rows).
  The capacity axis is symbolic: one graph serves every capacity.
* Greedy decoding guesses (on the CPU): the one-token graph with its matrices in Q6_K
  blocks (GGUF's 6-bit format, a fifth of float32's bytes, multiplied by MAX's quantized
  matmul) guesses the next few tokens; one float32 pass over them keeps the guesses float32
  would have chosen, and float32's own choice after the first wrong one. The ids are
  float32's; a pass over several rows costs little more than over one, so when the guesses
  hold, several tokens cost one float32 read of the weights. Sampling decodes one float32
  token at a time.

* One token's attention can be one op instead (``attention=``, step 16's Mojo kernel:
  ``gpt2.kernels.decode_attention``): it reads only the cached positions, each number once.

Greedy, it chooses the ids ``generate_cached`` chooses; the book's step 13 chapter shows
the measured difference.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from max.driver import CPU
from max.dtype import DType
from max.experimental import functional as F
from max.experimental.nn import Linear, ModuleList
from max.experimental.tensor import Tensor, TensorType, default_device
from max.graph.quantization import QuantizationEncoding

from gpt2 import compiled
from gpt2.checkpoint import build
from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_08 import GPT2Block
from solutions.solution_10 import GPT2LMHeadModel

MIN_CAPACITY = 64
DRAFT = 3  # tokens guessed by the Q6_K drafter before a float32 pass checks them
_HIDDEN = 1e30  # subtracted from the scores a token must not see


class CachedAttention(GPT2MultiHeadAttention):
    one_row = False  # compiled for one token at a time (compile_decoder sets it)
    kernel = None  # one token's attention as one op (step 16's; compile_decoder sets it)

    def forward(self, x, keys, values_t, hidden, later, start):
        """x [n, n_embd], n new tokens after the ``start`` [1] cached ones; keys [n_head,
        capacity, head_dim], the values transposed [n_head, head_dim, capacity]; hidden
        [capacity, 1] (0 where the cache holds a token, 1e30 elsewhere); later [n, n] (1e30
        where the key comes after the query) → out [n, n_embd], k, v [n_head, n, head_dim]."""
        n, n_embd = x.shape[0], self.n_head * self.head_dim
        q, k, v = F.split(self.c_attn(x), [n_embd, n_embd, n_embd], axis=-1)
        if self.kernel is not None:  # one token: [n_head, head_dim] each, all in one op
            q, k, v = (t.reshape([self.n_head, self.head_dim]) for t in (q, k, v))
            out = self.kernel(q, k, v, keys, values_t, start).reshape([1, n_embd])
            k, v = (t.reshape([self.n_head, 1, self.head_dim]) for t in (k, v))
            return self.c_proj(out), k, v
        q, k, v = (t.reshape([n, self.n_head, self.head_dim]).transpose(0, 1) for t in (q, k, v))
        return self.c_proj(self.attend(q, k, v, keys, values_t, hidden, later)), k, v

    def attend(self, q, k, v, keys, values_t, hidden, later):
        """Attention from MAX's composed ops: q, k, v [n_head, n, head_dim], the cache and
        masks as ``forward`` takes them → [n, n_embd]."""
        n, n_embd = q.shape[1], self.n_head * self.head_dim
        scale = 1.0 / math.sqrt(self.head_dim)
        queries = q.transpose(-1, -2)  # [n_head, head_dim, n]
        if self.one_row:  # one query: products as sums along the cache's inner axis
            cached = F.sum(keys * q, axis=-1) * scale - hidden  # [n_head, capacity, 1]
        else:
            cached = (keys @ queries) * scale - hidden  # [n_head, capacity, n]
        own = (k @ queries) * scale - later  # [n_head, n (keys), n (queries)]
        top = F.max(F.max(cached, axis=-2), F.max(own, axis=-2))  # one softmax over both
        cached_w, own_w = F.exp(cached - top), F.exp(own - top)
        if self.one_row:
            mixed = F.sum(values_t * cached_w.transpose(-1, -2), axis=-1)  # [n_head, head_dim, 1]
        else:
            mixed = values_t @ cached_w  # [n_head, head_dim, n]
        mixed = mixed + v.transpose(-1, -2) @ own_w
        total = F.sum(cached_w, axis=-2) + F.sum(own_w, axis=-2)  # [n_head, 1, n]
        return (mixed / total).permute([2, 0, 1]).reshape([n, n_embd])


class _CachedBlock(GPT2Block):
    def __init__(self, config):
        super().__init__(config)
        self.attn = CachedAttention(config)

    def forward(self, x, keys, values_t, hidden, later, start):
        attended, k, v = self.attn(self.ln_1(x), keys, values_t, hidden, later, start)
        x = x + attended
        return x + self.mlp(self.ln_2(x)), k, v


class DecodeModel(GPT2LMHeadModel):
    """Step 10's model run after a fixed cache: its parameters, so the same weights load.

    ``forward(tokens [n], start [1], *cache)``: n tokens at positions start, start + 1, …,
    after the cache that holds ``start`` positions: each layer's keys [n_head, capacity,
    head_dim], then each layer's values transposed [n_head, head_dim, capacity]. Returns
    the logits [n, vocab_size] and the tokens' keys and values [n_layer, n_head, n,
    head_dim].
    """

    def __init__(self, config):
        super().__init__(config)
        self.transformer.h = ModuleList([_CachedBlock(config) for _ in range(config.n_layer)])

    def forward(self, tokens: Tensor, start: Tensor, *cache: Tensor):
        t = self.transformer
        keys, values_t = cache[: len(t.h)], cache[len(t.h) :]  # one tensor per layer each
        n, capacity, device = tokens.shape[0], keys[0].shape[1], tokens.device
        rows = F.arange(0, n, 1, out_dim=n, dtype=DType.int64, device=device)
        slots = F.arange(0, capacity, 1, out_dim=capacity, dtype=DType.int64, device=device)
        x = t.wte(tokens) + t.wpe(start + rows)  # [n, n_embd]
        hidden = (F.cast(slots >= start, DType.float32) * _HIDDEN).reshape([capacity, 1])
        later = F.cast(rows.reshape([n, 1]) > rows.reshape([1, n]), DType.float32) * _HIDDEN
        new_keys, new_values = [], []
        for block, layer_keys, layer_values_t in zip(t.h, keys, values_t, strict=True):
            x, k, v = block(x, layer_keys, layer_values_t, hidden, later, start)
            new_keys.append(k)
            new_values.append(v)
        return self.lm_head(t.ln_f(x)), F.stack(new_keys), F.stack(new_values)


def quantize_q6_k(matrix: np.ndarray) -> np.ndarray:
    """A float32 matrix [rows, cols] (cols a multiple of 256) in GGUF's Q6_K blocks, the
    format MAX's quantized matmul reads: per 256 weights, 16 six-bit steps of 16 weights
    each with its own 8-bit scale, and one float16 scale of those scales; 210 bytes, a
    fifth of float32's. Returns uint8 [rows, cols / 256 * 210]."""
    rows, cols = matrix.shape
    x = matrix.astype(np.float32).reshape(-1, 16, 16)  # blocks, sub-blocks, weights
    extreme = np.take_along_axis(x, np.abs(x).argmax(-1)[..., None], -1)  # signed [b, 16, 1]
    sub = extreme / -32  # a sub-block's step: its extreme weight becomes -32
    d = (np.abs(sub).max(axis=1, keepdims=True) / 127).astype(np.float16)  # [b, 1, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        scales = np.where(d == 0, 0, np.round(sub / d.astype(np.float32))).clip(-127, 127)
        step = d.astype(np.float32) * scales
        q = np.where(step == 0, 0, np.round(x / step)).clip(-32, 31)
    u = (q + 32).astype(np.uint8).reshape(-1, 2, 2, 64)  # 6 bits: low 4 in ql, high 2 in qh
    ql = (u[:, :, 0] & 15) | ((u[:, :, 1] & 15) << 4)  # [b, 2, 64]
    high = (u >> 4).reshape(-1, 2, 4, 32)
    qh = high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)
    parts = [ql, qh, scales.astype(np.int8).view(np.uint8), d.view(np.uint8)]
    blocks = np.concatenate([part.reshape(len(x), -1) for part in parts], axis=1)
    return blocks.reshape(rows, cols // 256 * 210)


class Q6Linear(Linear):
    """``Linear`` with its matrix in Q6_K blocks (``quantize_q6_k``), multiplied by MAX's
    quantized matmul, which rounds the row to 8 bits. The matrix's rows are padded to a
    multiple of 32; ``forward`` drops the padding."""

    out_features: int

    def forward(self, x: Tensor) -> Tensor:
        rows = x.reshape([-1, x.shape[-1]])
        out = F.qmatmul(QuantizationEncoding.Q6_K, None, rows, self.weight)
        out = out[:, : self.out_features] + self.bias  # [rows, out]
        return out.reshape([*x.shape[:-1], self.out_features])


def quantized_state(twin, state: dict) -> dict:
    """Every ``Linear`` of ``twin`` (built lazily) whose input width is a multiple of 256
    turned into a ``Q6Linear``; returns ``state`` with those weights quantized."""
    state = dict(state)
    with F.lazy(), default_device(twin.device):
        for prefix, module in twin.descendants:
            if not isinstance(module, Linear) or int(module.weight.shape[1]) % 256:
                continue
            out_features, name = int(module.weight.shape[0]), f"{prefix}.weight"
            matrix = compiled.to_host(state[name])
            # Padding rows stay zero bytes (a zero scale: zero weights). A few thousand
            # rows at a time keep the temporaries small (lm_head alone is 154 MB).
            padded = out_features + -out_features % 32
            blocks = np.zeros((padded, matrix.shape[1] // 256 * 210), np.uint8)
            for top in range(0, out_features, 4096):
                rows = matrix[top : top + 4096]
                blocks[top : top + len(rows)] = quantize_q6_k(rows)
            module.__class__ = Q6Linear
            module.out_features = out_features
            module.weight = Tensor.zeros(list(blocks.shape), dtype=DType.uint8)
            state[name] = blocks
    return state


_DECODERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

ONE, ROWS, DRAFTER = "one", "rows", "draft"  # the graphs: see compile_decoder
KINDS = (ONE, ROWS, DRAFTER)


def compile_decoder(model, kind: str = ONE, attention: Callable | None = None):
    """``DecodeModel`` holding ``model``'s weights, compiled once per model, kind and
    attention: ``ONE`` token at a time, ``ROWS`` (any number of tokens: the prompt, a draft
    to check), or the ``DRAFTER`` (one token, Q6_K matrices: CPU only). ``attention``, an
    op of one token's q, k, v [n_head, head_dim], the cache and its length (step 16's
    kernel), replaces the one-token graphs' attention."""
    memo = _DECODERS.setdefault(model, {})
    attention = None if kind == ROWS else attention  # several tokens: MAX's ops always
    if (kind, attention) not in memo:
        config = model.config
        twin = build(DecodeModel, config, model.device)
        for block in twin.transformer.h:
            block.attn.one_row = kind != ROWS
            block.attn.kernel = attention
        state = dict(model.parameters)
        if kind == DRAFTER:
            state = quantized_state(twin, state)
        elif kind == ONE and isinstance(model.device, CPU):
            compiled.weights_first(twin)
        head_dim = config.n_embd // config.n_head
        keys = TensorType(DType.float32, [config.n_head, "capacity", head_dim], model.device)
        values_t = TensorType(DType.float32, [config.n_head, head_dim, "capacity"], model.device)
        tokens = TensorType(DType.int64, ["rows" if kind == ROWS else 1], device=model.device)
        start = TensorType(DType.int64, [1], device=model.device)
        cache = [keys] * config.n_layer + [values_t] * config.n_layer
        memo[kind, attention] = twin.compile(tokens, start, *cache, weights=state)
    return memo[kind, attention]


def drafting(model, greedy: bool, draft: int = DRAFT) -> bool:
    """Whether ``stream_fast`` guesses: greedy, on a CPU (the drafter's kernels are MAX's
    CPU ones), and asked to."""
    return greedy and draft > 0 and isinstance(model.device, CPU)


def compile_for(model, greedy: bool, draft: int = DRAFT, attention=None) -> None:
    """Compile the graphs ``stream_fast`` will run (the first time takes minutes)."""
    uses = (ROWS, DRAFTER) if drafting(model, greedy, draft) else (ROWS, ONE)
    for kind in uses:
        compile_decoder(model, kind, attention)


def capacity_for(length: int, context: int) -> int:
    """The smallest power of two ≥ ``length`` (and ≥ 64), at most the model's context."""
    return min(context, max(MIN_CAPACITY, 1 << max(length - 1, 0).bit_length()))


class FixedCache:
    """Keys [n_layer, n_head, capacity, head_dim] and values, stored transposed [n_layer,
    n_head, head_dim, capacity], of one text, in NumPy arrays that MAX reads in place (CPU)
    or copies (another device). ``length``: how many positions are filled."""

    def __init__(self, model, capacity: int):
        config = model.config
        layers = (config.n_layer, config.n_head)
        head_dim = config.n_embd // config.n_head
        self.keys = np.zeros((*layers, capacity, head_dim), dtype=np.float32)
        self.values = np.zeros((*layers, head_dim, capacity), dtype=np.float32)
        self.length = 0
        self.device = model.device
        self._views = None

    def tensors(self) -> list[Tensor]:
        """Each layer's keys, then each layer's values: views of the arrays (CPU), which
        MAX reads in place (DLPack), or copies on another device."""
        if self._views is None or not isinstance(self.device, CPU):
            layers = [*self.keys, *self.values]  # contiguous views, one per layer
            self._views = [compiled.to_device(layer, self.device) for layer in layers]
        return self._views

    def append(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Tokens' keys and values [n_layer, n_head, n, head_dim], after the others."""
        n = keys.shape[2]
        self.keys[:, :, self.length : self.length + n] = keys
        self.values[:, :, :, self.length : self.length + n] = values.transpose(0, 1, 3, 2)
        self.length += n

    def run(self, graph, tokens: Sequence[int]) -> np.ndarray:
        """``tokens`` through a ``compile_decoder`` graph after the cached positions, their
        keys and values appended; returns their logits [n, vocab_size]."""
        ids = compiled.to_device(np.asarray(tokens, dtype=np.int64), self.device)
        start = compiled.to_device(np.array([self.length], dtype=np.int64), self.device)
        logits, keys, values = graph(ids, start, *self.tensors())
        self.append(compiled.to_host(keys), compiled.to_host(values))
        return compiled.to_host(logits)


@dataclass
class DraftStats:
    """How many tokens the drafter guessed, and how many of them float32 kept."""

    guessed: int = 0
    kept: int = 0


def stream_fast(
    model,
    prompt_ids: Sequence[int],
    max_new_tokens: int,
    *,
    seed: int | None = None,
    draft: int = DRAFT,
    stats: DraftStats | None = None,
    attention: Callable | None = None,
    **knobs,
) -> Iterator[int]:
    """Step 13's ``stream_cached`` with the fixed cache: the same tokens, faster.
    ``knobs``: ``temperature``, ``top_k``, ``top_p``, as step 12's ``next_token`` takes them.
    Greedy on a CPU, ``draft`` tokens at a time are guessed by the Q6_K drafter and checked
    in float32 (0: none); ``stats`` counts the guesses and those kept. ``attention``: the
    one-token graphs' attention op (``compile_decoder``)."""
    from solutions.solution_12 import next_token

    rng = np.random.default_rng(seed)
    context = compiled.context_length(model)
    cache = FixedCache(model, capacity_for(len(prompt_ids) + max_new_tokens, context))
    logits = cache.run(compile_decoder(model, ROWS), list(prompt_ids))[-1]
    if drafting(model, knobs.get("temperature", 0.0) == 0, draft):
        token = next_token(logits, rng)
        stats = stats or DraftStats()
        yield from _drafted(model, cache, token, max_new_tokens, draft, stats, attention)
        return
    one = compile_decoder(model, ONE, attention)
    for i in range(max_new_tokens):
        token = next_token(logits, rng, **knobs)
        yield token
        if i + 1 < max_new_tokens:
            logits = cache.run(one, [token])[0]


def _drafted(model, cache, token: int, max_new_tokens: int, draft: int, stats, attention):
    """Greedy decoding from ``token`` (float32's choice after the cache's positions): guess
    up to ``draft`` tokens with the drafter, check them in one float32 pass."""
    drafter, checker = compile_decoder(model, DRAFTER, attention), compile_decoder(model, ROWS)
    left = max_new_tokens
    while True:
        yield token
        left -= 1
        if left == 0:
            return
        start, guesses = cache.length, []
        for _ in range(min(draft, left - 1)):  # the check itself adds one token
            last = guesses[-1] if guesses else token
            guesses.append(int(np.argmax(cache.run(drafter, [last])[0])))
        cache.length = start  # the guesses' keys and values are the drafter's: redone below
        choices = cache.run(checker, [token, *guesses]).argmax(axis=-1)  # float32's picks
        kept = next((i for i, g in enumerate(guesses) if g != choices[i]), len(guesses))
        stats.guessed, stats.kept = stats.guessed + len(guesses), stats.kept + kept
        cache.length = start + kept + 1  # token and the kept guesses
        yield from guesses[:kept]
        left -= kept
        token = int(choices[kept])


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
