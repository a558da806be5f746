"""The checker's engine: run one step's spec against one file and report what happened.

For a ``ModuleStep`` the engine

1. imports the learner's file (``checks.learner`` keeps its errors readable);
2. builds the learner's and the reference's module lazily with the same small config;
3. compares parameter names and shapes (HuggingFace names are part of the contract);
4. gives both modules the same seeded, non-uniform weights;
5. compiles both with ``Module.compile`` on the chosen device;
6. runs them on seeded inputs of several shapes and compares the numbers;
7. on a mismatch, compiles the known-mistake variants (all in one graph) and looks for the
   one whose numbers the learner's match; when that mistake is one MAX's compiler is known
   to produce from correct code, runs the learner's module eagerly to tell which it is.

Earlier steps always come from ``solutions/``, so one mistake never cascades.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from pathlib import Path

import numpy as np

from checks import paths, runtime, seeded
from checks.learner import Problem, guarded, load, require
from checks.progress import FAILED, NOT_STARTED, PASSED
from checks.results import CaseResult, Item, Report
from checks.spec import Case, ModuleStep, ValueStep

ROOT = runtime.ROOT

# Default tolerances (absolute, relative) per device for float32 comparisons.
TOLERANCES = {"cpu": (2e-5, 2e-5), "gpu": (1e-3, 1e-3)}
COMPILER_ISSUE = (
    "Your module gives the right numbers when it runs eagerly, but not once compiled. That is "
    "most likely a MAX compiler issue, not your mistake: see 'Troubleshooting MAX' in the book "
    "(a mask built with F.where/F.greater is one known case; F.band_part works)."
)
# How much looser a known mistake may match than the reference must.
MISTAKE_SLACK = 20.0


step_file = paths.step_file
solution_file = paths.solution_file
chapter_file = paths.chapter_file


def solution_module(number: int):
    return importlib.import_module(f"solutions.solution_{number:02d}")


def small_config(spec: ModuleStep):
    from solutions.solution_01 import GPT2Config

    return GPT2Config(**spec.config)


# --------------------------------------------------------------------------- comparisons


def compare_arrays(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float):
    """(ok, detail) for two arrays: shape, dtype, non-finite values, then the numbers."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    if actual.shape != expected.shape:
        return False, f"shape {list(actual.shape)}, expected {list(expected.shape)}"
    if actual.dtype != expected.dtype:
        return False, f"dtype {actual.dtype}, expected {expected.dtype}"
    if actual.size == 0:
        return True, "empty, as expected"
    if actual.dtype.kind in "iub":
        bad = actual != expected
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            return False, (
                f"{int(bad.sum())} of {bad.size} values differ; first at {list(where)}: "
                f"yours {actual[where]}, expected {expected[where]}"
            )
        return True, "all values equal"
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    # Infinities (a mask's -inf) must match exactly; NaN is never right.
    inf_mismatch = (np.isinf(a) | np.isinf(e)) & ~(a == e)
    nan = np.isnan(a) & ~np.isnan(e)
    if nan.any():
        where = tuple(int(i) for i in np.argwhere(nan)[0])
        return False, f"NaN in your output ({int(nan.sum())} values), first at {list(where)}"
    if inf_mismatch.any():
        where = tuple(int(i) for i in np.argwhere(inf_mismatch)[0])
        return False, (
            f"{int(inf_mismatch.sum())} values differ in their infinities; first at "
            f"{list(where)}: yours {a[where]:g}, expected {e[where]:g}"
        )
    finite = np.isfinite(e)
    err = np.abs(np.where(finite, a, 0.0) - np.where(finite, e, 0.0))
    tol = atol + rtol * np.abs(np.where(finite, e, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err > 0, err / np.maximum(tol, 1e-300), 0.0)
    worst = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    max_err = float(err.max())
    if ratio[worst] > 1.0:
        where = [int(i) for i in worst]
        if atol == 0 and rtol == 0:
            return False, (
                f"{int((err > 0).sum())} of {err.size} values differ; first at "
                f"{[int(i) for i in np.argwhere(err > 0)[0]]}: yours "
                f"{a[tuple(np.argwhere(err > 0)[0])]:g}, expected {e[tuple(np.argwhere(err > 0)[0])]:g}"
            )
        return False, (
            f"max |Δ| = {max_err:.3g} (allowed {atol:.0e} + {rtol:.0e}·|ref|) at {where}: "
            f"yours {a[worst]:.6g}, expected {e[worst]:.6g}"
        )
    return True, f"max |Δ| = {max_err:.2g}"


# --------------------------------------------------------------------------- module steps


ONE_OBJECT_TWICE = (
    "Two parameters that must be separate are one and the same tensor: the same module "
    "object was put in two places (a list of one block repeated n times holds that block n "
    "times). Build a new one for each place."
)


def _other_configs_agree(spec, mine_cls, ref_cls, config, target, path, report) -> bool:
    """Build both modules with each of ``spec.other_configs`` too; the parameters' names and
    shapes must agree under every one (no compile: a module that ignores a field shows it)."""
    for overrides in spec.other_configs:
        other = dataclasses.replace(config, **overrides)
        label = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        with runtime.building(target):
            with guarded(path, f"building {spec.name} with {label}"):
                mine = spec.build(mine_cls, other)
            ref = spec.build(ref_cls, other)
        ref_shapes = seeded.shapes(ref)
        with guarded(path, f"listing the parameters of {spec.name} with {label}"):
            mine_shapes = seeded.shapes(mine)
        if mine_shapes == ref_shapes:
            continue
        for item in _parameter_items(mine_shapes, ref_shapes):
            if not item.ok:
                report.items.append(Item(False, f"with {label}: {item.label}", item.detail))
        if "n_inner" in overrides and overrides["n_inner"] is None:
            report.hints.append(
                "GPT-2's own config has n_inner = None, which means an MLP 4 · n_embd wide: "
                "use config.n_inner when it is set, and 4 · n_embd when it is None."
            )
        return False
    return True


def _shared_tensors(mine, ref) -> str:
    """Names that share one tensor in the learner's module but not in the reference's."""

    def groups(module) -> list[list[str]]:
        by_tensor: dict[int, list[str]] = {}
        for name, tensor in module.parameters:
            by_tensor.setdefault(id(tensor), []).append(name)
        return [sorted(names) for names in by_tensor.values() if len(names) > 1]

    allowed = {tuple(g) for g in groups(ref)}
    for names in groups(mine):
        if tuple(names) not in allowed:
            shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
            return f"{shown} are the very same tensor"
    return ""


def _bundle(members: list):
    """One module that runs every member (the mistake variants) on the same input."""
    from max.experimental.nn import ModuleList

    class Bundle(ModuleList):
        def forward(self, x):
            return tuple(member(x) for member in self)

    return Bundle(members)


def _parameter_items(mine: dict, ref: dict) -> list[Item]:
    items = []
    missing = [n for n in ref if n not in mine]
    extra = [n for n in mine if n not in ref]
    shaped = [n for n in ref if n in mine and mine[n] != ref[n]]
    if not (missing or extra or shaped):
        listing = ", ".join(f"{n} {list(s)}" for n, s in ref.items())
        return [Item(True, "parameters", listing)]
    for n in missing:
        items.append(Item(False, f"missing parameter {n}", f"expected shape {list(ref[n])}"))
    for n in extra:
        items.append(Item(False, f"unexpected parameter {n}", f"shape {list(mine[n])}"))
    for n in shaped:
        items.append(
            Item(False, f"parameter {n}", f"shape {list(mine[n])}, expected {list(ref[n])}")
        )
    return items


def _check_module(spec: ModuleStep, path: Path, target, report: Report, eager_first: bool):
    from max.experimental.nn import Module

    solution = solution_module(spec.number)
    config = small_config(spec)
    ns = load(path, f"_learner_step_{spec.number:02d}")
    require(ns, spec.public, path)
    mine_cls = getattr(ns, spec.name)
    if not (isinstance(mine_cls, type) and issubclass(mine_cls, Module)):
        raise Problem(
            "missing",
            f"{spec.name} in {path} is not a MAX Module.",
            f"Declare it as `class {spec.name}(Module):` with Module from "
            "max.experimental.nn, as the skeleton does.",
        )
    ref_cls = getattr(solution, spec.name)

    with runtime.building(target):
        with guarded(path, f"building {spec.name}"):
            mine = spec.build(mine_cls, config)
        ref = spec.build(ref_cls, config)

    ref_shapes = seeded.shapes(ref)
    with guarded(path, f"listing the parameters of {spec.name}"):
        mine_shapes = seeded.shapes(mine)
    param_items = _parameter_items(mine_shapes, ref_shapes)
    report.items += param_items
    if not all(i.ok for i in param_items):
        report.hints.append(
            "Parameter names follow HuggingFace's GPT-2 so that real weights load later; "
            "keep the attribute names the skeleton asks for."
        )
        return
    if not _other_configs_agree(spec, mine_cls, ref_cls, config, target, path, report):
        return
    shared = _shared_tensors(mine, ref)
    if shared:
        report.items.append(Item(False, "one tensor under two names", shared))
        report.hints.append(ONE_OBJECT_TWICE)
        return

    weights = seeded.weights(ref_shapes, seed=1000 + spec.number)
    atol, rtol = tolerances(spec, target)
    rng = np.random.default_rng(spec.number)

    groups: dict[tuple, list[Case]] = {}
    for case in spec.cases:
        groups.setdefault((case.dims, case.kind), []).append(case)

    # Trace the learner's forward first: its Python runs here under the time limit, and its
    # errors surface before anything runs.
    traced = []  # (cases, input types, your traced graph)
    for cases in groups.values():
        types = _case_types(cases[0], config, target)
        with guarded(path, f"tracing {spec.name}.forward"):
            traced.append((cases, types, mine.trace(*types).graph))

    # A graph MAX has not compiled yet takes it a minute or more. With ``eager_first`` the
    # learner does not wait for that: their module runs on MAX's eager interpreter now, and
    # the graph is handed back (``report.pending``) to be compiled in the background.
    eager = eager_first and not all(runtime.is_graph_cached(graph) for *_, graph in traced)
    if eager:
        report.ran = "eager"
        with guarded(path, f"loading weights into {spec.name}"):
            mine.load_state_dict(seeded.tied(weights, mine))
    results: list[CaseResult] = []
    for cases, types, graph in traced:
        reference = _reference_runner(spec, ref, types, weights, target, eager_first)
        if eager:
            report.pending.append(graph)
            run_mine = _eager_runner(mine, target)
            report.items.append(
                Item(
                    True,
                    f"ran on MAX's eager interpreter on {target.label}",
                    f"input {_type_label(cases[0], config)}",
                )
            )
        else:
            started = time.perf_counter()
            with guarded(path, f"compiling {spec.name}"):
                run_mine = runtime.compile_module(mine, types, seeded.tied(weights, mine), target)
            report.items.append(
                Item(
                    True,
                    f"compiled with MAX on {target.label}",
                    f"input {_type_label(cases[0], config)} ({time.perf_counter() - started:.1f} s)",
                )
            )
        for case in cases:
            x = seeded.inputs(case, config, rng)
            expected = reference(x)
            with guarded(path, f"running {spec.name} on input {case.describe(config)}"):
                mine_out = run_mine(runtime.to_tensor(x, target))
                if isinstance(mine_out, (tuple, list)):
                    raise Problem(
                        "output",
                        f"{spec.name}.forward returned {len(mine_out)} values; expected one tensor.",
                    )
                mine_out, wrong_dtype = _output_array(mine_out, expected)
            if wrong_dtype:
                report.items.append(
                    Item(False, f"output for input {case.describe(config)}", wrong_dtype)
                )
                continue
            ok, detail = compare_arrays(mine_out, expected, atol, rtol)
            report.items.append(Item(ok, f"output for input {case.describe(config)}", detail))
            results.append(CaseResult(case, x, mine_out, expected, None))
    report.results = results

    if all(i.ok for i in report.items):
        return
    if any(not i.ok and i.detail.startswith("dtype ") for i in report.items):
        report.hints.append(
            f"Keep the output in the input's dtype ({target.label.split(', ')[-1]} here): a "
            ".cast() in forward, or a constant made with another dtype, changes it."
        )
        return
    if len(results) < len(spec.cases):  # some outputs could not be read: nothing to match
        if spec.hint:
            report.hints.append(spec.hint)
        return

    # Which known mistake do the numbers match? The variants are compiled only now, when a
    # learner needs the diagnosis: a passing check never pays for them.
    if any(m.variant is not None for m in spec.mistakes):
        results = report.results = with_variant_outputs(
            spec, results, target, compile=not eager_first
        )
    matched = match_mistake(spec, results, atol, rtol)
    # Right numbers eagerly but wrong once compiled: MAX, not the learner. Tried only when
    # MAX's compiler is known to turn correct code into this mistake's numbers: an eager
    # run compiles every operation on its own, minutes on a machine that has not yet.
    if (
        matched is not None
        and matched.compiler_lookalike
        and report.ran == "compiled"
        and _eager_agrees(spec, mine_cls, config, weights, results, target, atol, rtol, path)
    ):
        report.hints.append(COMPILER_ISSUE)
        return
    if matched is not None:
        report.hints.append(matched.hint)
        return
    if spec.hint:
        report.hints.append(spec.hint)


def _mistake_bundle(spec: ModuleStep, target):
    """The known-mistake variants of ``spec``, built from the reference: (each variant, one
    module running them all, that module's weights: the reference's, per variant)."""
    variants = [m for m in spec.mistakes if m.variant is not None]
    ref_cls = getattr(solution_module(spec.number), spec.name)
    config = small_config(spec)
    with runtime.building(target):
        ref = spec.build(ref_cls, config)
        members = [spec.build(m.variant(ref_cls), config) for m in variants]
        bundle = _bundle(members)
    weights = seeded.weights(seeded.shapes(ref), seed=1000 + spec.number)
    bundle_weights = {
        f"{i}.{name}": value
        for i, member in enumerate(bundle)
        for name, value in seeded.tied(weights, member).items()
    }
    return members, bundle, bundle_weights, weights


def _case_types(case: Case, config, target) -> list:
    return [runtime.tensor_type(target, seeded.input_dtype(case, target), case.symbolic(config))]


def compile_mistakes(spec: ModuleStep, target) -> None:
    """Compile the graphs that run ``spec``'s known mistakes, one per input rank (the
    warm-up does this ahead of time, so that naming a mistake costs no compile)."""
    _members, bundle, bundle_weights, _ = _mistake_bundle(spec, target)
    config = small_config(spec)
    seen = set()
    for case in spec.cases:
        if (case.dims, case.kind) not in seen:
            seen.add((case.dims, case.kind))
            runtime.compile_module(
                bundle, _case_types(case, config, target), bundle_weights, target
            )


def with_variant_outputs(spec: ModuleStep, results: list, target, compile: bool = True) -> list:
    """``results`` with every mistake variant's output on each input filled in: the numbers
    each known mistake would give, with the weights the check gave the reference.

    They come from one compiled graph (per input rank) running them all, or, where that graph
    is not compiled yet and ``compile`` is False, from running each variant eagerly."""
    members, bundle, bundle_weights, weights = _mistake_bundle(spec, target)
    config = small_config(spec)
    runners, filled = {}, []
    for result in results:
        case, x = result.case, result.x
        key = (case.dims, case.kind)
        if key not in runners:
            types = _case_types(case, config, target)
            if compile or runtime.is_cached(bundle, types):
                runners[key] = runtime.compile_module(bundle, types, bundle_weights, target)
            else:
                for member in members:
                    member.load_state_dict(seeded.tied(weights, member))
                runs = [_eager_runner(member, target) for member in members]
                runners[key] = lambda tensor, runs=runs: [run(tensor) for run in runs]
        outs = [runtime.to_numpy(o) for o in runners[key](runtime.to_tensor(x, target))]
        filled.append(result._replace(variants=outs))
    return filled


def _eager_runner(module, target):
    """``x -> module(x)``, run eagerly: ``module`` holds its weights, and MAX's eager
    interpreter computes the result when it is read (``to_numpy``)."""

    def run(x):
        with runtime.building(target, lazy=False):
            return module(x)

    return run


def _reference_runner(spec, ref, types, weights, target, eager_first: bool):
    """``x -> the reference's output`` as a NumPy array: compiled if MAX has compiled it
    before (or ``eager_first`` is False), else run eagerly rather than wait for a compile."""
    if not eager_first or runtime.is_cached(ref, types):
        compiled = runtime.compile_module(ref, types, seeded.tied(weights, ref), target)
        return lambda x: runtime.to_numpy(compiled(runtime.to_tensor(x, target)))
    ref.load_state_dict(seeded.tied(weights, ref))
    run = _eager_runner(ref, target)
    return lambda x: runtime.to_numpy(run(runtime.to_tensor(x, target)))


def match_mistake(spec: ModuleStep, results: list, atol: float, rtol: float):
    """The known mistake whose numbers the learner's match, or None.

    ``results`` holds a ``CaseResult`` (or a tuple of its fields) per input, the variants'
    outputs filled in. A variant counts only where its numbers differ from the reference's;
    the learner's must then agree with it everywhere (with slack).
    """
    results = [CaseResult(*r) for r in results]
    variants = [m for m in spec.mistakes if m.variant is not None]
    for index, mistake in enumerate(variants):
        distinct = any(
            not compare_arrays(r.variants[index], r.reference, atol, rtol)[0] for r in results
        )
        if distinct and all(
            compare_arrays(r.mine, r.variants[index], atol * MISTAKE_SLACK, rtol * MISTAKE_SLACK)[0]
            for r in results
        ):
            return mistake
    for mistake in spec.mistakes:
        if mistake.detect is not None and all(mistake.detect(r.mine, r.reference) for r in results):
            return mistake
    return None


def tolerances(spec, target) -> tuple[float, float]:
    """(atol, rtol) for ``spec`` on ``target``."""
    atol, rtol = (t * spec.tolerance for t in TOLERANCES[target.name])
    return atol, rtol


def _output_array(value, expected: np.ndarray):
    """(array, "") for the learner's output, or (None, why) when NumPy cannot hold it."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and not isinstance(dtype, np.dtype):
        try:
            runtime.numpy_dtype(dtype)
        except Exception:  # bfloat16 and friends have no NumPy dtype
            shape = [int(d) for d in value.shape]
            if shape != list(expected.shape):
                return None, f"shape {shape}, expected {list(expected.shape)}"
            return None, f"dtype {str(dtype).split('.')[-1]}, expected {expected.dtype}"
    return runtime.to_numpy(value), ""


def _type_label(case: Case, config) -> str:
    return "[" + ", ".join(str(d) for d in case.symbolic(config)) + "]"


def _eager_agrees(spec, mine_cls, config, weights, results, target, atol, rtol, path) -> bool:
    """Run the learner's module eagerly (no graph compiler) and compare with the reference."""
    try:
        with runtime.building(target):
            with guarded(path, "building your module for an eager run"):
                eager = spec.build(mine_cls, config)
        eager.load_state_dict(seeded.tied(weights, eager))
        with runtime.building(target, lazy=False):
            for result in results:
                with guarded(path, "running your module eagerly"):
                    out = runtime.to_numpy(eager(runtime.to_tensor(result.x, target)))
                if not compare_arrays(out, result.reference, atol, rtol)[0]:
                    return False
        return True
    except Exception:  # an eager failure says nothing about the compiled one
        return False


# --------------------------------------------------------------------------- value steps


def _check_values(spec: ValueStep, path: Path, target, report: Report):
    solution = solution_module(spec.number)
    ns = load(path, f"_learner_step_{spec.number:02d}")
    require(ns, spec.public, path)
    failures = []
    for case in spec.cases:
        # The learner's code first: an untouched skeleton stops here, before the reference
        # costs anything (steps 12-13 compile a model for it).
        with guarded(path, f"evaluating {spec.describe(case)}"):
            actual = spec.evaluate(ns, case, target)
        reference = spec.evaluate(solution, case, target)
        expected = spec.expected(case, reference) if spec.expected else reference
        ok, detail = spec.compare(actual, expected)
        report.items.append(Item(ok, spec.describe(case), detail))
        if not ok:
            failures.append((case, actual, reference, expected))
    if not failures:
        return
    for mistake in spec.mistakes:
        if mistake.variant is not None:
            matched = all(
                spec.compare(actual, mistake.variant(reference, case))[0]
                for case, actual, reference, _ in failures
            )
        else:
            matched = all(mistake.detect(actual, expected) for _, actual, _, expected in failures)
        if matched:
            report.hints.append(mistake.hint)
            return
    if spec.hint:
        report.hints.append(spec.hint)


# --------------------------------------------------------------------------- generation steps


def _check_generation(spec, path: Path, target, report: Report):

    try:
        _check_generation_cases(spec, path, target, report)
    finally:
        if spec.finish is not None:
            spec.finish()


def _check_generation_cases(spec, path: Path, target, report: Report):
    from checks.specs import generation

    ns = load(path, f"_learner_step_{spec.number:02d}")
    require(ns, spec.public, path)
    ctx = generation.context(target)
    failures = []
    for case in spec.cases:
        # The learner's code first: an untouched skeleton stops here, before the reference
        # costs anything (it compiles the model).
        with guarded(path, f"evaluating {spec.describe(case)}"):
            actual = spec.run(ns, case, ctx)
        expected = spec.expected(case, ctx)
        ok, detail = spec.compare(actual, expected)
        report.items.append(Item(ok, spec.describe(case), detail))
        if not ok:
            failures.append((case, actual, expected))
    if not failures:
        return
    for mistake in spec.mistakes:
        if mistake.variant is not None:
            matched = all(
                spec.compare(actual, mistake.variant(case, ctx))[0] for case, actual, _ in failures
            )
        else:
            matched = all(mistake.detect(actual, expected) for _, actual, expected in failures)
        if matched:
            report.hints.append(mistake.hint)
            return
    if spec.hint:
        report.hints.append(spec.hint)


# --------------------------------------------------------------------------- entry point


def run(spec, path: Path | None = None, target=None, eager_first: bool = False) -> Report:
    """Check ``path`` (default: the learner's step file) against ``spec``.

    ``eager_first``: where MAX has not compiled the learner's module yet, run it on MAX's
    eager interpreter instead of waiting for the compile (``Report.pending`` then lists the
    graphs to compile, for the next check). Without it, everything is compiled first.
    """
    path = Path(path) if path is not None else step_file(spec.number)
    report = Report(spec.number, spec.title, path)
    started = time.perf_counter()
    try:
        target = target or runtime.pick_device("auto")
        report.target = target.label
        if spec.kind == "module":
            _check_module(spec, path, target, report, eager_first)
        elif spec.kind == "generation":
            _check_generation(spec, path, target, report)
        else:
            _check_values(spec, path, target, report)
        report.status = PASSED if report.items and all(i.ok for i in report.items) else FAILED
    except Problem as problem:
        report.problem = problem
        report.status = NOT_STARTED if problem.kind == "not-started" else FAILED
    report.seconds = time.perf_counter() - started
    return report
