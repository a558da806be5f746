"""Step 16 · Fused decode attention in Mojo: the learner's op against attention's formula,
then in gpt2.fast's attention layer.

Each case is one new token's query, key and value for every head, and a cache of
``capacity`` positions of which the first ``cached`` are filled; the rest hold other
numbers (as a real cache does after a rejected guess), which the op must not read. The
cached lengths cover one position, lengths that are not a multiple of any SIMD width, and
a full cache; one head size (24) leaves a tail after 16-wide vectors, and one case
has scores large enough that exp overflows float32 unless the softmax subtracts its
maximum. The last case runs gpt2.fast's attention layer (seeded weights, the tiny model's
shapes) with the learner's op against the same layer with MAX's composed ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from checks.learner import load_kernel
from checks.spec import Mistake, Spec, close
from gpt2 import runtime


@dataclass(frozen=True)
class Cache:
    """A case: ``n_head`` heads of ``head_dim`` numbers, ``cached`` of ``capacity`` filled;
    ``loud`` scales the queries and keys so that scores reach the hundreds."""

    n_head: int
    head_dim: int
    capacity: int
    cached: int
    loud: bool = False


CASES = (
    Cache(4, 64, 64, 1),
    Cache(12, 64, 64, 13),
    Cache(3, 24, 40, 37),
    Cache(4, 64, 128, 128),
    Cache(2, 64, 64, 20, loud=True),
)
LAYER = "layer"  # gpt2.fast's attention layer with the op inside


@dataclass(frozen=True)
class Inputs:
    q: np.ndarray  # [n_head, head_dim], and k, v
    k: np.ndarray
    v: np.ndarray
    keys: np.ndarray  # [n_head, capacity, head_dim]
    values_t: np.ndarray  # [n_head, head_dim, capacity]
    cached: int

    def arrays(self) -> list[np.ndarray]:
        length = np.array([self.cached], dtype=np.int64)
        return [self.q, self.k, self.v, self.keys, self.values_t, length]


@dataclass(frozen=True)
class Answer:
    """What the op must return for ``inputs`` (None for the layer case): ``out``."""

    inputs: Inputs | None
    out: np.ndarray


def _inputs(case: Cache) -> Inputs:
    rng = np.random.default_rng(1600 + case.capacity * case.n_head + case.cached)
    h, d, c = case.n_head, case.head_dim, case.capacity
    loud = 10.0 if case.loud else 1.0  # scores in the hundreds: exp(89) is inf in float32
    q, k, v = (rng.standard_normal((h, d)).astype(np.float32) for _ in range(3))
    keys = rng.standard_normal((h, c, d)).astype(np.float32)
    values_t = rng.standard_normal((h, d, c)).astype(np.float32)
    keys[:, case.cached :] *= 5  # what is past the cached positions: other numbers
    values_t[:, :, case.cached :] += 3
    return Inputs(q * loud, k * loud, v, keys * loud, values_t, case.cached)


def attend(a: Inputs, cached=None, own=True, scale=True, values=None) -> np.ndarray:
    """Attention's formula in float64: softmax(q · K / √d) · V over the first ``cached``
    positions and (``own``) the new token. The other arguments compute known mistakes."""
    cached = a.cached if cached is None else cached
    keys, vals = a.keys[:, :cached], (a.values_t if values is None else values)[:, :, :cached]
    if own:
        keys = np.concatenate([keys, a.k[:, None]], axis=1)
        vals = np.concatenate([vals, a.v[:, :, None]], axis=2)
    scores = np.einsum("hd,htd->ht", a.q.astype(np.float64), keys)
    scores = scores / np.sqrt(a.q.shape[1]) if scale else scores
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("ht,hdt->hd", weights, vals)


def run(ns, case, ctx):
    if case == LAYER:
        return _layer(ns.gpt2_decode_attention, ctx)
    tensors = [runtime.to_tensor(x, ctx.target) for x in _inputs(case).arrays()]
    return runtime.to_numpy(ns.gpt2_decode_attention(*tensors))


def _layer(op, ctx) -> np.ndarray:
    """gpt2.fast's attention (seeded weights, n_embd 32, 4 heads) on one token after 20 of
    64 cached positions; its attention by ``op``, or by MAX's composed ops (None)."""
    from checks import seeded
    from gpt2.fast import CachedAttention
    from solutions.solution_01 import GPT2Config

    config = GPT2Config(n_embd=32, n_head=4, n_positions=64)
    with runtime.building(ctx.target):
        attention = CachedAttention(config)
    weights = seeded.weights(seeded.shapes(attention), seed=1606)
    attention.load_state_dict(seeded.tied(weights, attention))
    attention.one_row, attention.kernel = True, op
    a = _inputs(Cache(4, 8, 64, 20))
    x = np.random.default_rng(16).standard_normal((1, 32)).astype(np.float32)
    hidden = (np.arange(64) >= a.cached).astype(np.float32).reshape(64, 1) * 1e30
    inputs = [x, a.keys, a.values_t, hidden, np.zeros((1, 1), np.float32)]
    inputs += [np.array([a.cached], dtype=np.int64)]
    out, _, _ = attention(*(runtime.to_tensor(t, ctx.target) for t in inputs))
    return runtime.to_numpy(out)


def expected(case, ctx):
    if case == LAYER:
        return Answer(None, _layer(None, ctx))  # MAX's composed ops, as gpt2.fast runs them
    a = _inputs(case)
    return Answer(a, attend(a).astype(np.float32))


def compare(actual, expected, tol):
    return close(actual, expected.out, tol)


def describe(case) -> str:
    if case == LAYER:
        return "gpt2.fast's attention layer with your op, against MAX's composed ops"
    loud = ", scores in the hundreds" if case.loud else ""
    return (
        f"{case.n_head} heads of {case.head_dim}, {case.cached} of {case.capacity} "
        f"positions cached{loud}"
    )


# ---------------------------------------------------------------- known mistakes


def _fits(*variants):
    """A detector: on every kernel case, the learner's numbers are one of ``variants``
    (keyword arguments of ``attend``) of the case's inputs."""

    def detect(actual, expected):
        a = expected.inputs
        if a is None:  # the layer case follows from the others
            return True
        return any(
            np.shape(actual) == expected.out.shape
            and np.allclose(actual, attend(a, **v), atol=1e-4, rtol=1e-4)
            for v in variants
        )

    return detect


def _overflowed(actual, expected) -> bool:
    """Infinities or NaN where the formula's numbers are finite: exp of large scores."""
    if expected.inputs is None:
        return True
    return bool(np.isfinite(expected.out).all() and not np.isfinite(actual).all())


def _past_length(actual, expected) -> bool:
    a = expected.inputs
    if a is None:
        return True
    capacity = a.keys.shape[1]
    variants = [
        dict(cached=n, own=own)
        for n in (a.cached + 1, capacity)
        if n <= capacity
        for own in (True, False)
    ]
    return bool(variants) and _fits(*variants)(actual, expected)


def _values_axis(actual, expected) -> bool:
    """The values read as if they were stored like the keys, [n_head, capacity, head_dim]."""
    a = expected.inputs
    if a is None:
        return True
    as_keys = a.values_t.reshape(a.keys.shape).transpose(0, 2, 1)
    return _fits(dict(values=as_keys))(actual, expected)


SPEC = Spec(
    cases=(*CASES, LAYER),
    run=run,
    expected=expected,
    compare=compare,
    describe=describe,
    load=load_kernel,
    cpu_only=True,  # its GPU version has never run: the check stays on the CPU
    mistakes=(
        Mistake(
            "no-max-subtracted",
            "Your numbers turn into inf or NaN when the scores are large: exp(score) "
            "overflows float32 above about 88. Keep the largest score, top, while you "
            "compute them, and take exp(score - top): the softmax is the same, and no "
            "exponential is larger than 1.",
            detect=_overflowed,
            change={"exp(w[unsafe_offset=t] - top)": "exp(w[unsafe_offset=t])"},
        ),
        Mistake(
            "scale-forgotten",
            "Your numbers are attention without the scale: each score q · k is divided by "
            "√head_dim (times scale) before the softmax.",
            detect=_fits(dict(scale=False)),
            change={
                "w[unsafe_offset=t] = dot(query, key, head_dim) * scale": "w[unsafe_offset=t] = dot(query, key, head_dim)",
                "var top = dot(query, k_.unsafe_offset(h * head_dim), head_dim) * scale": "var top = dot(query, k_.unsafe_offset(h * head_dim), head_dim)",
            },
        ),
        Mistake(
            "own-token-missed",
            "Your numbers are attention over the cached positions only: the new token "
            "attends to itself too, and its key and value are not in the cache yet (they "
            "are k and v).",
            detect=_fits(dict(own=False)),
            change={
                "    var top = dot(query, k_.unsafe_offset(h * head_dim), head_dim) * scale\n"
                "    w[unsafe_offset=cached] = top\n": "    var top: Float32 = -1e30\n",
                "for t in range(cached + 1):": "for t in range(cached):",
                "var own = w[unsafe_offset=cached] * v_[unsafe_offset=h * head_dim + i]": "var own: Float32 = 0",
            },
        ),
        Mistake(
            "past-length",
            "Your op reads positions past the cache's length: only the first `cached` "
            "positions hold this text's keys and values; the rest of the capacity holds "
            "other numbers.",
            detect=_past_length,
            change={"var cached = Int(length[0])": "var cached = capacity"},
        ),
        Mistake(
            "values-axis",
            "Your values come from the wrong axis: values_t is transposed, [n_head, "
            "head_dim, capacity], so number i of every position's value lies in row i, "
            "starting at values_ + (h · head_dim + i) · capacity, one position after another.",
            detect=_values_axis,
            change={
                "        var row = values_.unsafe_offset((h * head_dim + i) * capacity)\n"
                "        var own = w[unsafe_offset=cached] * v_[unsafe_offset=h * head_dim + i]\n"
                "        out_row[unsafe_offset=i] = (dot(w, row, cached) + own) / total\n": "        var mixed = w[unsafe_offset=cached] * v_[unsafe_offset=h * head_dim + i]\n"
                "        for t in range(cached):  # as if values_t were [n_head, capacity, head_dim]\n"
                "            mixed += w[unsafe_offset=t] * values_[unsafe_offset=(h * capacity + t) * head_dim + i]\n"
                "        out_row[unsafe_offset=i] = mixed / total\n"
            },
        ),
    ),
    hint="For each head: softmax(q · kᵀ / √head_dim) over the cached positions and the new "
    "token, then the weighted sum of their values; compare your loops with `cached`, "
    "the scale, and the layout of values_t [n_head, head_dim, capacity].",
)
