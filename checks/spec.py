"""What a spec (``checks/specs/step_NN.py``) declares: one shape for every kind of step.

A ``Spec`` says what to run on each case, how to compare, and which known mistakes to look
for. The step's number, title, kind and public names come from ``course.toml`` alone.

* ``run(ns, case, ctx)``: what the names of one file (the learner's, the reference's, or the
  reference with a mistake built in) answer to one case. A module step's ``run`` is made by
  ``module_step``: it builds the module with the checks' small config, gives it seeded
  weights and runs it on seeded inputs.
* ``expected(case, ctx)``: what the answer must be; by default the reference's own answer.
* ``compare(actual, expected, tol)``: ``(ok, detail)``. ``tol`` is the device's tolerance
  times the spec's ``tolerance``, and its ``slack`` (1 for the check, ``MISTAKE_SLACK`` to
  recognise a mistake) widens any numeric tolerance.
* ``mistakes``: each ``Mistake`` is the reference file with a few lines changed
  (``change``): the engine runs that file on the failing cases, or, for a mistake made in
  several shapes or one too slow to run (Mojo, a server), ``detect`` recognises the
  learner's answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The one small config every module check uses. Keeping it identical across steps lets MAX
# reuse the kernels it compiled for one step in the next. Every field differs from GPT-2
# small's and matters: a module that ignores one (uses GPT-2's value instead, say 4 · n_embd
# for n_inner, or eps 1e-5) computes other numbers or has other parameters.
SMALL_CONFIG = dict(
    vocab_size=97,
    n_positions=40,
    n_embd=48,
    n_layer=2,
    n_head=4,
    n_inner=80,
    layer_norm_epsilon=1e-3,
)
# Other configs a module must be built with, giving the reference's parameters: the checks
# compare names and shapes under each. GPT-2 itself has no n_inner (None: 4 · n_embd wide).
OTHER_CONFIGS = ({"n_inner": None},)
# Default tolerances (absolute, relative) per device for float32 comparisons.
TOLERANCES = {"cpu": (2e-5, 2e-5), "gpu": (1e-3, 1e-3)}
# How much looser a known mistake may match than the reference must.
MISTAKE_SLACK = 20.0


@dataclass(frozen=True)
class Tol:
    """How close numbers must be: the device's (atol, rtol) times the spec's factor, and a
    slack that multiplies every numeric tolerance (to recognise a mistake's numbers)."""

    atol: float
    rtol: float
    slack: float = 1.0


@dataclass(frozen=True)
class Mistake:
    """A known wrong version of the step, and the hint to give when the learner's is it.

    ``change`` makes the wrong version: the step's reference file with each key replaced by
    its value (the first place it occurs). The engine runs that file on the cases the
    learner failed and gives the hint when the answers agree. A mistake that learners make
    in several shapes (an epsilon of 1e-12 or 1e-6, a mask of booleans or of ones), or one
    the engine cannot run beside the learner's (a Mojo kernel, a server), is recognised
    from the answers by ``detect(actual, expected)`` instead; its ``change`` is still the
    file tests/test_meta.py checks gets this hint.
    """

    name: str
    hint: str
    change: Mapping[str, str]
    detect: Callable[[Any, Any], bool] | None = None


@dataclass(frozen=True)
class Case:
    """One input to a module: its axes, and the sizes of the axes that are not config fields."""

    dims: tuple[str, ...]
    sizes: dict[str, int]
    kind: str = "float"  # float | ids | positions

    def shape(self, config) -> tuple[int, ...]:
        return tuple(self.sizes[d] if d in self.sizes else getattr(config, d) for d in self.dims)

    def describe(self, config) -> str:
        pairs = zip(self.dims, self.shape(config), strict=True)
        return "[" + ", ".join(f"{d}={n}" for d, n in pairs) + "]"


# Token ids [batch, seq] in two shapes, the second with one token.
TOKEN_ID_CASES = (
    Case(("batch", "seq"), {"batch": 2, "seq": 7}, kind="ids"),
    Case(("batch", "seq"), {"batch": 3, "seq": 1}, kind="ids"),
)
# Hidden states [batch, seq, n_embd] in two shapes, the second with one token.
HIDDEN_CASES = (
    Case(("batch", "seq", "n_embd"), {"batch": 2, "seq": 7}),
    Case(("batch", "seq", "n_embd"), {"batch": 3, "seq": 1}),
)


@dataclass(frozen=True)
class ModuleBuild:
    """How a module step builds its class: ``build(cls, config)``, and its configs."""

    name: str
    build: Callable[[type, Any], Any]
    config: Mapping[str, Any]
    other_configs: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class Spec:
    cases: Sequence[Any]
    run: Callable[[Any, Any, Any], Any]  # (namespace, case, ctx) -> answer
    compare: Callable[[Any, Any, Tol], tuple[bool, str]]  # (actual, expected, tol)
    describe: Callable[[Any], str] = str  # case -> label
    expected: Callable[[Any, Any], Any] | None = None  # (case, ctx); None: the reference's run
    mistakes: Sequence[Mistake] = ()
    hint: str = ""  # said when the answer is wrong and no known mistake matches
    module: ModuleBuild | None = None  # module steps: parameters are compared before cases
    tolerance: float = 1.0  # multiplies the device's default tolerances
    # How a file becomes the names the cases run: (path, the step's public names) ->
    # namespace; None: import it as Python. A kernel step compiles its Mojo
    # (``checks.learner.load_kernel``).
    load: Callable[[Any, tuple[str, ...]], Any] | None = None
    cpu_only: bool = False  # the step's code runs on the CPU only: checked there on any machine
    # The reference's answers cost a compile (steps 12 and 13): keep them on disk, so that a
    # check after an edit runs only the learner's code (``checks.engine.expected_answer``).
    keep_expected: bool = False


# --------------------------------------------------------------------------- comparing


def compare_arrays(actual, expected, atol: float, rtol: float) -> tuple[bool, str]:
    """(ok, detail) for two arrays: shape, dtype, non-finite values, then the numbers."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return False, f"shape {list(actual.shape)}, expected {list(expected.shape)}"
    if actual.dtype != expected.dtype:
        return False, f"dtype {actual.dtype}, expected {expected.dtype}"
    if actual.size == 0:
        return True, "empty, as expected"
    if actual.dtype.kind in "iub" or (atol == 0 and rtol == 0):
        bad = actual != expected
        if actual.dtype.kind == "f":
            bad &= ~(np.isnan(actual) & np.isnan(expected))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            return False, (
                f"{int(bad.sum())} of {bad.size} values differ; first at {list(where)}: "
                f"yours {actual[where]:g}, expected {expected[where]:g}"
                if actual.dtype.kind == "f"
                else f"{int(bad.sum())} of {bad.size} values differ; first at {list(where)}: "
                f"yours {actual[where]}, expected {expected[where]}"
            )
        return True, "all values equal"
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    nan = np.isnan(a) & ~np.isnan(e)
    if nan.any():
        where = tuple(int(i) for i in np.argwhere(nan)[0])
        return False, f"NaN in your output ({int(nan.sum())} values), first at {list(where)}"
    inf_mismatch = (np.isinf(a) | np.isinf(e)) & ~(a == e)  # a mask's -inf must match exactly
    if inf_mismatch.any():
        where = tuple(int(i) for i in np.argwhere(inf_mismatch)[0])
        return False, (
            f"{int(inf_mismatch.sum())} values differ in their infinities; first at "
            f"{list(where)}: yours {a[where]:g}, expected {e[where]:g}"
        )
    finite = np.isfinite(e)
    err = np.abs(np.where(finite, a - np.where(finite, e, 0.0), 0.0))
    tol = atol + rtol * np.abs(np.where(finite, e, 0.0))
    ratio = err / np.maximum(tol, 1e-300)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    if ratio[worst] > 1.0:
        return False, (
            f"max |Δ| = {float(err.max()):.3g} (allowed {atol:.0e} + {rtol:.0e}·|ref|) at "
            f"{[int(i) for i in worst]}: yours {a[worst]:.6g}, expected {e[worst]:.6g}"
        )
    return True, f"max |Δ| = {float(err.max()):.2g}"


def close(actual, expected, tol: Tol) -> tuple[bool, str]:
    """Arrays within the device's tolerance (the default ``compare``)."""
    return compare_arrays(actual, expected, tol.atol * tol.slack, tol.rtol * tol.slack)


def exact(actual, expected, tol: Tol | None = None) -> tuple[bool, str]:
    """Arrays that must be equal to the last bit (a mask, ids)."""
    return compare_arrays(actual, expected, 0.0, 0.0)


def module_step(
    name: str,
    cases: Sequence[Case],
    *,
    build: Callable[[type, Any], Any] = lambda cls, config: cls(config),
    mistakes: Sequence[Mistake] = (),
    hint: str = "",
    tolerance: float = 1.0,
    config: Mapping[str, Any] | None = None,
    other_configs: Sequence[Mapping[str, Any]] = OTHER_CONFIGS,
) -> Spec:
    """A module step: class ``name`` built by ``build(cls, config)`` (default
    ``cls(config)``), run on ``cases``."""
    from checks.modules import run_module

    return Spec(
        cases=tuple(cases),
        run=run_module,
        compare=close,
        tolerance=tolerance,
        describe=lambda case: f"output for input {case.describe(_small(config))}",
        mistakes=tuple(mistakes),
        hint=hint,
        module=ModuleBuild(name, build, dict(config or SMALL_CONFIG), tuple(other_configs)),
    )


def _small(config=None):
    from solutions.solution_01 import GPT2Config

    return GPT2Config(**(config or SMALL_CONFIG))
