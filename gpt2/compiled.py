"""Running the model compiled: the plumbing of steps 12 and 13, written once for the course.

``logits_function`` compiles a model once and turns token ids into the last position's
logits (step 12 generates with it). ``cached_function`` does the same for step 13's cached
twin of a model, carrying the cache of keys and values from one run to the next. Both keep
what they compiled per model, so a second call costs nothing. On a CPU, the cached twin
multiplies its one row by each weight matrix in the order MAX runs faster
(``weights_first``; measured in step 13's chapter).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Sequence

import numpy as np
from max.driver import CPU
from max.dtype import DType
from max.experimental.nn import Linear
from max.experimental.tensor import Tensor, TensorType

from gpt2.checkpoint import build


def to_device(array: np.ndarray, device) -> Tensor:
    tensor = Tensor.from_dlpack(np.ascontiguousarray(array))
    return tensor if isinstance(device, CPU) else tensor.to(device)


def to_host(tensor: Tensor) -> np.ndarray:
    if not isinstance(tensor.device, CPU):
        tensor = tensor.to(CPU())
    return tensor.to_numpy()


def context_length(model) -> int:
    """How many positions the model has embeddings for (``n_positions``)."""
    return int(model.config.n_positions)


# ---------------------------------------------------------------------------- step 12

_LOGITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# ANCHOR: logits_function
def logits_function(model) -> Callable[[Sequence[int]], np.ndarray]:
    """Return ``ids -> logits of the last position``, ``model`` compiled at the first call.

    The sequence axis is symbolic ("seq"), so one compiled graph serves every length as
    the text grows. It is kept per model: a later call for the same model reuses it.
    """

    def last_logits(ids: Sequence[int]) -> np.ndarray:
        logits = compile_model(model)(to_device(np.asarray([ids], dtype=np.int64), model.device))
        return to_host(logits)[0, -1]

    return _remembering(last_logits)


def _remembering(last_logits, size: int = 16):
    """``last_logits`` that answers the same ids again from memory (the last ``size``): many
    draws from one prompt, with other seeds, pay for one run of the model."""
    import collections

    seen: collections.OrderedDict = collections.OrderedDict()

    def remembered(ids: Sequence[int]) -> np.ndarray:
        key = tuple(int(i) for i in ids)
        if key not in seen:
            seen[key] = last_logits(ids)
            if len(seen) > size:
                seen.popitem(last=False)
        seen.move_to_end(key)
        return seen[key].copy()

    return remembered


def compile_model(model):
    """``model`` compiled for token ids [1, seq] (once per model)."""
    if model not in _LOGITS:
        ids_type = TensorType(DType.int64, [1, "seq"], device=model.device)
        _LOGITS[model] = model.compile(ids_type)
    return _LOGITS[model]


# ANCHOR_END: logits_function


# ---------------------------------------------------------------------------- step 13

Cache = tuple[Tensor, Tensor]  # keys and values, [n_layer, 1, n_head, past_len, head_dim]


def cache_shape(model, past_len) -> list:
    config = model.config
    return [config.n_layer, 1, config.n_head, past_len, config.n_embd // config.n_head]


def empty_cache(model) -> Cache:
    """The cache before the prompt: no positions yet (past_len = 0)."""
    empty = np.zeros(cache_shape(model, 0), dtype=np.float32)
    return to_device(empty, model.device), to_device(empty, model.device)


_CACHED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# ANCHOR: cached_function
def cached_function(
    model, cached_class: type
) -> Callable[[Sequence[int], Cache], tuple[np.ndarray, Cache]]:
    """Return ``(ids, cache) -> (logits of the last position, longer cache)``, with
    ``cached_class``, the cached twin of ``model``, compiled at the first call (once per
    model), ``model``'s weights loaded into it.

    The cache stays where the model runs (a MAX tensor), so nothing but the logits crosses
    to NumPy.
    """
    context = context_length(model)

    def run(ids: Sequence[int], cache: Cache) -> tuple[np.ndarray, Cache]:
        past_len = int(cache[0].shape[3])
        if past_len + len(ids) > context:
            raise ValueError(
                f"{past_len} cached positions + {len(ids)} new tokens exceed the model's "
                f"context of {context}: after the prefill, run one new token at a time"
            )
        ids_tensor = to_device(np.asarray([ids], dtype=np.int64), model.device)
        logits, keys, values = compile_twin(model, cached_class)(ids_tensor, *cache)
        return to_host(logits)[0], (keys, values)

    return run


def compile_twin(model, cached_class: type, prepare: Callable | None = None):
    """``cached_class`` built like ``model``, holding its weights, compiled (once per model);
    or, while ``INTERPRET_TWINS`` is set, run on MAX's eager interpreter (see below).
    ``prepare(twin)``, if given, changes the twin before it is compiled (``--mine``: the
    learner's GELU kernel in its MLPs)."""
    memo = _CACHED.setdefault(model, {})  # one compiled twin per class, per model
    if cached_class not in memo:
        twin = build(cached_class, model.config, model.device)
        if prepare is not None:
            prepare(twin)
        if INTERPRET_TWINS:
            memo[cached_class] = _interpreted(twin, model)
            return memo[cached_class]
        if isinstance(model.device, CPU):
            weights_first(twin)  # the same numbers, faster on one row: see below
        cache_type = TensorType(DType.float32, cache_shape(model, "past_len"), device=model.device)
        ids_type = TensorType(DType.int64, [1, "seq"], device=model.device)
        memo[cached_class] = twin.compile(
            ids_type, cache_type, cache_type, weights=dict(model.parameters)
        )
    return memo[cached_class]


# ANCHOR_END: cached_function

# Whether ``cached_function`` runs the twin without compiling it: each run traced as one lazy
# graph and executed by MAX's eager interpreter, op by op, on kernels compiled once per
# machine. The same numbers, and no graph compile to wait for when ``cached_class`` has just
# changed (the checker sets it: a learner's edited class answers in seconds); a compiled twin
# runs each decode step ~100× faster, which is what generating text wants.
INTERPRET_TWINS = False


@contextlib.contextmanager
def interpreting_twins():
    """Within it, ``cached_function`` runs its twins on the eager interpreter."""
    global INTERPRET_TWINS
    before, INTERPRET_TWINS = INTERPRET_TWINS, True
    try:
        yield
    finally:
        INTERPRET_TWINS = before


def _interpreted(twin, model):
    import hashlib

    from max.experimental import functional as F

    twin.load_state_dict(dict(model.parameters))
    seen: dict[bytes, tuple] = {}  # a run repeated with the same ids and cache: its answer

    def run(ids, keys, values):
        key = hashlib.sha256()
        for tensor in (ids, keys, values):
            array = to_host(tensor)
            key.update(repr(array.shape).encode() + array.tobytes())
        key = key.digest()
        if key not in seen:
            with F.lazy():
                logits, new_keys, new_values = twin(ids, keys, values)
            logits.to_numpy()  # realizes the whole run: the cache's new tensors with it
            if len(seen) > 1000:
                seen.clear()
            seen[key] = (logits, new_keys, new_values)
        return seen[key]

    return run


# ANCHOR: weights_first
class WeightsFirstLinear(Linear):
    """``Linear`` computed as (W @ xᵀ)ᵀ instead of x @ Wᵀ: the same numbers, another order.

    A decode step multiplies one row by every weight matrix. MAX 26.7's CPU matmul does
    that faster, as a rule, with W as the left operand: see step 13's measurements.
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


def compiled_memo(kind: str) -> weakref.WeakKeyDictionary:
    """What this module keeps compiled per model: "logits" (step 12) or "cached" (step 13).
    For benchmarks that time a compile: forget a model's entry, then call again."""
    return {"logits": _LOGITS, "cached": _CACHED}[kind]
