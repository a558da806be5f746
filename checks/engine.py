"""The checker's engine: one step's spec against one file, in one way for every step.

1. import the learner's file (``checks.learner`` keeps its errors readable);
2. a module step first compares the parameters' names and shapes (``checks.modules``);
3. for each case, run the learner's names and compare with what is expected (by default,
   what the reference's names answer), within the device's tolerance;
4. if a case fails, find the known mistake: the reference file with the mistake's
   ``change`` made, run on the same failing cases, or its ``detect`` looking at the
   answers. The first that matches gives its hint.

Nothing is compiled for the learner's code: modules and step 13's cached model run on MAX's
eager interpreter, whose kernels are compiled once per machine (``checks.warmup``). Earlier
steps always come from ``solutions/``, so one mistake never cascades.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.learner import Problem, guarded, load, require
from checks.results import Item, Report
from checks.spec import MISTAKE_SLACK, TOLERANCES, Mistake, Spec, Tol
from gpt2 import compiled, course


@functools.cache
def spec(number: int) -> Spec:
    """Step ``number``'s spec (``checks/specs/step_NN.py``)."""
    return importlib.import_module(f"checks.specs.step_{number:02d}").SPEC


@dataclass
class Context:
    """What every run of a check shares: where it runs, the step, and, made once when first
    asked for, the tiny GPT-2 and the built modules. ``learner``: the file whose code runs
    under the time limit (``guard``); None for the reference and the mistakes."""

    target: Any  # gpt2.runtime.Target
    number: int
    learner: Path | None = None
    memo: dict = field(default_factory=dict)
    resources: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def guard(self, doing: str):
        return guarded(self.learner, doing) if self.learner else contextlib.nullcontext()

    def reference(self) -> Context:
        return Context(self.target, self.number, None, self.memo, self.resources)

    def enter(self, key, make: Callable[[], contextlib.AbstractContextManager]):
        """The value of context manager ``make()`` entered once per check under ``key`` (a
        server, say), and exited when the check ends."""
        if key not in self.memo:
            self.memo[key] = self.resources.enter_context(make())
        return self.memo[key]

    @property
    def spec(self) -> Spec:
        return spec(self.number)

    @property
    def model(self):
        """The tiny GPT-2 (checks/data/tiny-gpt2), loaded by the reference's load_pretrained."""
        if "model" not in self.memo:
            from solutions.solution_11 import load_pretrained

            self.memo["model"] = load_pretrained(course.TINY_GPT2, device=self.target.device)[1]
        return self.memo["model"]

    def tolerance(self, slack: float = 1.0) -> Tol:
        atol, rtol = TOLERANCES[self.target.name]
        factor = self.spec.tolerance
        return Tol(atol * factor, rtol * factor, slack)


def reference_module(number: int):
    return importlib.import_module(f"solutions.solution_{number:02d}")


def mistake_source(number: int, mistake: Mistake) -> str:
    """Step ``number``'s reference file with ``mistake.change`` made: a learner's file that
    makes the mistake."""
    path = course.solution_file(number)
    text = path.read_text()
    for old, new in mistake.change.items():
        if old not in text:
            raise ValueError(f"{old!r} is not in {path.name}: update mistake {mistake.name!r}")
        text = text.replace(old, new, 1)
    return text


def with_mistake(number: int, mistake: Mistake):
    """The module that step ``number``'s reference with ``mistake`` made defines."""
    name = f"_mistake_{number:02d}_{time.monotonic_ns()}"
    return load(course.solution_file(number), name, mistake_source(number, mistake))


def _answer(spec: Spec, ns, case, ctx: Context):
    with ctx.guard(f"evaluating {spec.describe(case)}"):
        return spec.run(ns, case, ctx)


def check(number: int, path: Path, target) -> Report:
    """Check ``path`` against step ``number``'s spec on ``target``."""
    entry = course.step(number)
    if spec(number).cpu_only and target.name != "cpu":
        from gpt2 import runtime

        target = runtime.pick_device("cpu")  # the report's label says where it ran
    report = Report(number, entry.title, path, target=target.label)
    started = time.perf_counter()
    try:
        with compiled.interpreting_twins():  # step 13: no compile of the learner's model
            _check(spec(number), entry, path, target, report)
        report.status = (
            course.PASSED if report.items and all(i.ok for i in report.items) else course.FAILED
        )
    except Problem as problem:
        report.problem = problem
        report.status = course.NOT_STARTED if problem.kind == "not-started" else course.FAILED
    report.seconds = time.perf_counter() - started
    return report


def _check(spec: Spec, entry: course.Step, path: Path, target, report: Report) -> None:
    if spec.load is not None:
        ns = spec.load(path, entry.names)
    else:
        ns = load(path, f"_learner_step_{entry.tag}")
    require(ns, entry.names, path)
    ctx = Context(target, entry.number, learner=path)
    with ctx.resources:  # a server the check started stops here, whatever happened
        _cases(spec, entry, ns, ctx, report)


def _reference_answer(spec: Spec, number: int, case, ctx: Context):
    if spec.expected is not None:
        return spec.expected(case, ctx.reference())
    return spec.run(reference_module(number), case, ctx.reference())


@functools.cache
def _reference_sources() -> bytes:
    """A digest of everything a reference answer is computed from: the reference code, the
    specs and the runtime, the tiny GPT-2 and MAX's version."""
    import hashlib
    from importlib.metadata import version

    digest = hashlib.sha256(version("max").encode())
    for folder, pattern in (
        ("solutions", "*.py"),
        ("checks/specs", "*.py"),
        ("gpt2", "*.py"),
        ("checks/data/tiny-gpt2", "*"),
    ):
        for path in sorted((course.ROOT / folder).glob(pattern)):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.digest()


def expected_answer(spec: Spec, number: int, case, ctx: Context):
    """What case ``case`` should answer; with ``spec.keep_expected``, read from
    ``.cache/checks/expected`` when the same reference computed it before."""
    if not spec.keep_expected:
        return _reference_answer(spec, number, case, ctx)
    import hashlib
    import pickle

    key = hashlib.sha256(_reference_sources() + f"{ctx.target.label} {case!r}".encode())
    path = course.cache_dir() / "expected" / f"{number:02d}-{key.hexdigest()[:24]}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    answer = _reference_answer(spec, number, case, ctx)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(f".{time.monotonic_ns()}")
    staged.write_bytes(pickle.dumps(answer))
    staged.replace(path)  # whole or not at all, should two checks write it at once
    return answer


def _cases(spec: Spec, entry: course.Step, ns, ctx: Context, report: Report) -> None:
    if spec.module is not None:
        from checks import modules

        if not modules.parameters_agree(ns, ctx, report):
            return
    tol = ctx.tolerance()
    failing = []
    for case in spec.cases:
        # The learner's code first: an untouched skeleton stops here, before the reference
        # costs anything.
        actual = _answer(spec, ns, case, ctx)
        expected = expected_answer(spec, entry.number, case, ctx)
        ok, detail = spec.compare(actual, expected, tol)
        report.items.append(Item(ok, spec.describe(case), detail))
        if not ok:
            failing.append((case, actual, expected))
    if failing and spec.module is not None:
        from checks import modules

        if any(not i.ok and i.detail.startswith("dtype ") for i in report.items):
            report.hints.append(modules.DTYPE_HINT)
            return
    if failing:
        found = match_mistake(spec, entry.number, failing, ctx)
        hint = found.hint if found is not None else spec.hint
        if hint:
            report.hints.append(hint)


def match_mistake(spec: Spec, number: int, failing: list, ctx: Context):
    """The first known mistake whose answers the learner's failing ones are, or None.

    The changed reference matches when, on every failing case, the learner's answer agrees
    with its answer (within ``MISTAKE_SLACK`` times the tolerance), and its answer is not the
    expected one on at least one of them."""
    tol, loose = ctx.tolerance(), ctx.tolerance(MISTAKE_SLACK)
    ref_ctx = ctx.reference()
    for mistake in spec.mistakes:
        if mistake.detect is not None:
            if all(mistake.detect(actual, expected) for _, actual, expected in failing):
                return mistake
            continue
        wrong_ns = with_mistake(number, mistake)
        distinct = False
        for case, actual, expected in failing:
            wrong = spec.run(wrong_ns, case, ref_ctx)
            if not spec.compare(actual, wrong, loose)[0]:
                break
            distinct = distinct or not spec.compare(wrong, expected, tol)[0]
        else:
            if distinct:
                return mistake
    return None
