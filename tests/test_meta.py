"""The checker judges every step correctly: the untouched skeleton is "not started", the
reference passes, and every known mistake in a step's catalogue is caught with its own hint.

Every mistake is caught end to end, from a file, by ``test_known_mistake_is_caught_with_its_hint``.
For module steps that compiles one more graph per mistake (from half a minute to minutes each
on a machine that has not compiled them before), so those cases are marked slow. So is most of
``test_every_mistake_variant_is_told_apart``, which shows from the outputs of the variants the
check compiles to diagnose a failure that each variant's numbers lead to its own hint.
"""

from __future__ import annotations

import pytest

from checks import engine, registry
from checks.progress import NOT_STARTED


def _mistake_source(spec, index: int) -> str:
    mistake = spec.mistakes[index]
    if mistake.example:
        return mistake.example_source()
    if spec.kind == "module" and mistake.variant is not None:
        return (
            f"from solutions.solution_{spec.number:02d} import *  # noqa: F403\n"
            f"from checks.specs.step_{spec.number:02d} import SPEC\n\n"
            f"{spec.name} = SPEC.mistakes[{index}].variant({spec.name})  # noqa: F405\n"
        )
    raise AssertionError(
        f"step {spec.number:02d} mistake {mistake.name!r} has no example: give it a variant "
        "(module steps) or an example file (value steps) so the meta-test can show it is caught"
    )


def _slow(spec) -> bool:
    """A module step compiles a graph per mistake; step 14 starts a server with a new graph."""
    return spec.kind == "module" or getattr(spec, "starts_server", False)


MISTAKES = [
    pytest.param(
        n,
        i,
        id=f"{n:02d}-{m.name}",
        marks=[pytest.mark.slow] if _slow(registry.spec(n)) else [],
    )
    for n in registry.numbers()
    for i, m in enumerate(registry.spec(n).mistakes)
]
MODULE_STEPS = [n for n in registry.numbers() if registry.spec(n).kind == "module"]
_SOLUTION_REPORTS: dict[int, engine.Report] = {}


def _solution_report(number, target) -> engine.Report:
    if number not in _SOLUTION_REPORTS:
        _SOLUTION_REPORTS[number] = engine.run(
            registry.spec(number), engine.solution_file(number), target
        )
    return _SOLUTION_REPORTS[number]


@pytest.mark.parametrize("number", registry.numbers())
def test_untouched_skeleton_is_not_started(number, cpu):
    report = engine.run(registry.spec(number), engine.step_file(number), cpu)
    assert report.status == NOT_STARTED, report.first_failure()
    assert report.problem.file and report.problem.line


# A module step's check compiles its reference and the learner's module: a minute or more per
# step on a fresh machine. The default run keeps two small ones; -m slow runs the others.
SOLUTIONS = [
    pytest.param(
        n, marks=[pytest.mark.slow] if registry.spec(n).kind == "module" and n not in (3, 5) else []
    )
    for n in registry.numbers()
]


@pytest.mark.parametrize("number", SOLUTIONS)
def test_solution_passes(number, cpu):
    report = _solution_report(number, cpu)
    assert report.passed, report.first_failure()
    assert not report.hints


@pytest.mark.parametrize("number,index", MISTAKES)
def test_known_mistake_is_caught_with_its_hint(number, index, cpu, tmp_path):
    spec = registry.spec(number)
    path = tmp_path / f"step_{number:02d}.py"
    path.write_text(_mistake_source(spec, index))
    report = engine.run(spec, path, cpu)
    assert report.status == "failed"
    assert report.hints == [spec.mistakes[index].hint], report.first_failure()


def test_step13_whole_text_fed_again_is_explained(cpu, tmp_path):
    """The chapter's fourth step-13 mistake lives in the loop, not in a module, so it has no
    variant: feeding the whole text again on top of the cache must still fail with a message
    that says what to do instead."""
    from checks.spec import solution_with

    source = solution_with(
        13,
        "            logits, cache = run([token], cache)  # decode: one token, the cache holds "
        "the rest",
        "            prompt_ids = [*prompt_ids, token]\n"
        "            logits, cache = run(prompt_ids, cache)  # the whole text again",
    )()
    path = tmp_path / "step_13.py"
    path.write_text(source)
    report = engine.run(registry.spec(13), path, cpu)
    assert report.status == "failed"
    assert report.problem is not None, report.first_failure()
    assert "after the prefill, run one new token at a time" in report.problem.detail, report.problem


# Compiling a step's variants takes minutes for the larger modules on a fresh machine: the
# default run keeps the smallest (token embeddings), the rest are slow.
@pytest.mark.parametrize(
    "number", [pytest.param(n, marks=[] if n == 5 else [pytest.mark.slow]) for n in MODULE_STEPS]
)
def test_every_mistake_variant_is_told_apart(number, cpu):
    """Learner outputs equal to variant i's (computed by the check's own compiled bundle)
    are diagnosed as mistake i: not as the reference, not as another mistake."""
    spec = registry.spec(number)
    report = _solution_report(number, cpu)
    assert report.passed and report.results, report.first_failure()
    results = engine.with_variant_outputs(spec, report.results, cpu)
    atol, rtol = engine.tolerances(spec, cpu)
    variants = [m for m in spec.mistakes if m.variant is not None]
    assert len(variants) == len(spec.mistakes), "a module-step mistake without a variant"
    for index, mistake in enumerate(variants):
        as_if_learner = [(c, x, v[index], r, v) for c, x, _, r, v in results]
        assert not all(
            engine.compare_arrays(v[index], r, atol, rtol)[0] for _, _, _, r, v in results
        ), f"{mistake.name}: its numbers equal the reference's, the check cannot see it"
        found = engine.match_mistake(spec, as_if_learner, atol, rtol)
        assert found is mistake, f"{mistake.name} diagnosed as {found and found.name}"


def test_mistake_names_are_unique_per_step():
    for spec in registry.all_specs():
        names = [m.name for m in spec.mistakes]
        assert len(names) == len(set(names)), spec.number


def test_every_module_step_has_a_seq_len_one_case_and_two_shapes():
    for spec in registry.all_specs():
        if spec.kind != "module":
            continue
        assert len(spec.cases) >= 2, spec.number
        assert any(c.sizes.get("seq") == 1 for c in spec.cases), spec.number
