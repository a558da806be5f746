"""The checker judges every step correctly: the untouched skeleton is "not started", the
reference passes, and every known mistake in a step's catalogue is caught with its own hint."""

from __future__ import annotations

import pytest

from checks import engine, registry


def _mistake_source(spec, index: int) -> str:
    mistake = spec.mistakes[index]
    if mistake.example:
        return mistake.example
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


MISTAKES = [
    pytest.param(n, i, id=f"{n:02d}-{m.name}")
    for n in registry.numbers()
    for i, m in enumerate(registry.spec(n).mistakes)
]


@pytest.mark.parametrize("number", registry.numbers())
def test_untouched_skeleton_is_not_started(number, cpu):
    report = engine.run(registry.spec(number), engine.step_file(number), cpu)
    assert report.status == "not-started", report.first_failure()
    assert report.problem.file and report.problem.line


@pytest.mark.parametrize("number", registry.numbers())
def test_solution_passes(number, cpu):
    report = engine.run(registry.spec(number), engine.solution_file(number), cpu)
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
