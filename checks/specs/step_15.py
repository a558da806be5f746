"""Step 15 · A GELU kernel in Mojo: the learner's op against GELU's formula, then in an MLP.

Each case is a float32 tensor of seeded numbers; the row lengths are chosen so that a row
can be shorter than one SIMD vector, a whole number of vectors (3072, GPT-2's MLP), or
vectors and a tail, for every SIMD width from 2 to 64. The last case runs step 04's MLP
(the reference, with seeded weights) with the learner's GELU in place of MAX's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from checks.learner import load_kernel
from checks.spec import Mistake, Spec, close
from gpt2 import runtime

SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)
SHAPES = ((3, 5), (7, 3072), (1, 13), (4, 37), (2, 1), (2, 3, 99))


@dataclass(frozen=True)
class Answer:
    """What the kernel must return for input ``x``: ``y``, its GELU (float32)."""

    x: np.ndarray
    y: np.ndarray


def _input(shape) -> np.ndarray:
    rng = np.random.default_rng(1500 + int(np.prod(shape)))
    return (rng.standard_normal(shape) * 3).astype(np.float32)  # GELU's curve, both tails


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**3)))


def run(ns, case, ctx):
    if case == "mlp":
        return _mlp(ns.gpt2_gelu, ctx)
    return runtime.to_numpy(ns.gpt2_gelu(runtime.to_tensor(_input(case), ctx.target)))


def _mlp(gelu, ctx) -> np.ndarray:
    """Step 04's reference MLP on a seeded [2, 7, 48] input, GELU from ``gelu``."""
    from checks import seeded
    from gpt2.kernels import MLPWithKernel
    from solutions.solution_01 import GPT2Config
    from solutions.solution_04 import GPT2MLP

    with runtime.building(ctx.target):
        mlp = GPT2MLP(80, GPT2Config(n_embd=48))
    mlp.load_state_dict(seeded.tied(seeded.weights(seeded.shapes(mlp), seed=1504), mlp))
    x = np.random.default_rng(15).standard_normal((2, 7, 48)).astype(np.float32)
    module = mlp if gelu is None else MLPWithKernel(mlp, gelu)
    return runtime.to_numpy(module(runtime.to_tensor(x, ctx.target)))


def expected(case, ctx):
    if case == "mlp":
        return Answer(np.zeros(0), _mlp(None, ctx))  # MAX's own GELU
    x = _input(case)
    return Answer(x, gelu_tanh(x).astype(np.float32))


def compare(actual, expected, tol):
    return close(actual, expected.y, tol)


def describe(case) -> str:
    if case == "mlp":
        return "step 04's MLP with your GELU, against MAX's GELU"
    return f"gpt2_gelu on a {' × '.join(map(str, case))} tensor"


# ---------------------------------------------------------------- known mistakes


def _on_kernel_cases(detect):
    """``detect`` on the kernel's own cases; the MLP case follows from them."""
    return lambda actual, expected: expected.x.size == 0 or bool(detect(actual, expected))


def _fits(*formulas):
    """A detector: the learner's numbers are one of ``formulas(x)``."""

    def detect(actual, expected):
        x = expected.x.astype(np.float64)
        return any(np.allclose(actual, f(x), atol=1e-4, rtol=1e-4) for f in formulas)

    return _on_kernel_cases(detect)


def erf_form(x):
    from math import erf

    return 0.5 * x * (1 + np.vectorize(erf)(x / np.sqrt(2.0)))


# Where 0.044715 can go wrong: x² for x³, or outside the bracket √(2/π) multiplies.
MISPLACED = (
    lambda x: 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x**2))),
    lambda x: 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * x + 0.044715 * x**3)),
    lambda x: 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715) * x**3)),
)


@_on_kernel_cases
def tail_missed(actual, expected):
    """Right on each row's first columns, wrong only among its last ``n % width`` for one
    SIMD width: the numbers past the last whole vector were never computed (the output's
    memory holds whatever was there, which may even be right by chance)."""
    if np.shape(actual) != expected.y.shape:
        return False
    n = expected.y.shape[-1]
    bad = ~np.isclose(actual, expected.y, atol=1e-4, rtol=1e-4)
    columns = bad.reshape(-1, n).any(axis=0)
    for width in (2, 4, 8, 16, 32, 64):
        start = n - n % width
        if not columns[:start].any() and columns[start:].any():
            return True
    return False


SPEC = Spec(
    cases=(*SHAPES, "mlp"),
    run=run,
    expected=expected,
    compare=compare,
    describe=describe,
    load=load_kernel,
    mistakes=(
        Mistake(
            "erf-form",
            "Your numbers are the exact GELU, x · Φ(x) with erf. GPT-2 was trained with the "
            "tanh approximation: 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))).",
            detect=_fits(erf_form),
            change={
                "from std.math import tanh": "from std.math import tanh, erf",
                "    return 0.5 * x * (1 + tanh(sqrt_2_over_pi * (x + 0.044715 * x * x * x)))": "    return 0.5 * x * (1 + erf(x * 0.7071067811865476))",
            },
        ),
        Mistake(
            "constant-misplaced",
            "0.044715 belongs to the cube, inside the bracket that √(2/π) multiplies: "
            "tanh(√(2/π) · (x + 0.044715 · x³)).",
            detect=_fits(*MISPLACED),
            change={"(x + 0.044715 * x * x * x)": "(x + 0.044715 * x * x)"},
        ),
        Mistake(
            "tail-missed",
            "The last numbers of some rows are wrong: your vector loop stops at the last whole "
            "SIMD vector, and the n % simd numbers after it need a loop of their own, one at "
            "a time.",
            detect=tail_missed,
            change={
                "                for j in range(vector_end, n):\n"
                "                    dst[unsafe_offset=start + j] = gelu(src[unsafe_offset=start + j])\n": ""
            },
        ),
    ),
    hint="GELU(x) = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))), for every number of "
    "every row: compare your kernel's loops with the row's length n.",
)
