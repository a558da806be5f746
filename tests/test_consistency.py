"""Every step is complete and its skeleton is its solution with the learner's parts cut out.

A step is four parts sharing one number NN: ``steps/step_NN.py``, ``solutions/solution_NN.py``
(``.mojo`` both, for a kernel step), ``book/src/step_NN.md`` and ``checks/specs/step_NN.py``;
plus its entry in the manifest
(``course.toml``, held to pixi.toml, SUMMARY.md and README.md by tests/test_manifest.py).
Forgetting one fails here.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re

import pytest
from checker_helpers import pixi_tasks

from gpt2 import course

ROOT = course.ROOT
REGION = re.compile(
    r"(# ---- your code starts here ----\n).*?(\s*# ---- your code ends here ----)", re.S
)
NUMBERS = course.numbers()


def _outside_regions(text: str) -> str:
    # Blank lines just before the end marker are the formatter's (after a method), not code.
    return REGION.sub(lambda m: m.group(1) + m.group(2).lstrip("\n"), text)


def test_steps_are_numbered_from_one_without_gaps():
    assert NUMBERS == list(range(1, len(NUMBERS) + 1))


@pytest.mark.parametrize("number", NUMBERS)
def test_step_has_all_its_parts(number):
    for path in (
        course.step_file(number),
        course.solution_file(number),
        course.chapter_file(number),
        course.spec_file(number),
    ):
        assert path.is_file(), f"step {number:02d} is missing {path.relative_to(ROOT)}"


@pytest.mark.parametrize("number", NUMBERS)
def test_step_is_registered_in_pixi_and_summary(number):
    tasks = pixi_tasks()
    assert tasks.get(f"s{number:02d}") == f"python -m checks {number:02d}"
    summary = (ROOT / "book" / "src" / "SUMMARY.md").read_text()
    assert f"(step_{number:02d}.md)" in summary


@pytest.mark.parametrize("number", NUMBERS)
def test_skeleton_equals_solution_outside_the_marked_regions(number):
    skeleton = course.step_file(number).read_text()
    solution = course.solution_file(number).read_text()
    assert REGION.search(solution), "the solution marks no region for the learner"
    assert len(REGION.findall(skeleton)) == len(REGION.findall(solution))
    assert _outside_regions(skeleton) == _outside_regions(solution)
    for region in REGION.finditer(skeleton):
        assert "TODO" in region.group(0), (
            f"a region of the skeleton without a TODO: {region.group(0)!r}"
        )


@pytest.mark.parametrize("number", NUMBERS)
def test_skeleton_imports_earlier_steps_from_solutions_only(number):
    skeleton = course.step_file(number).read_text()
    assert not re.search(r"^\s*(from|import)\s+steps\b", skeleton, re.M)


def _signature(obj) -> str:
    return str(inspect.signature(obj))


KERNELS = [n for n in NUMBERS if course.step(n).kind == course.KERNEL]


@pytest.mark.parametrize("number", KERNELS)
def test_a_kernel_steps_files_register_its_public_ops(number):
    for path in (course.step_file(number), course.solution_file(number)):
        registered = re.findall(r'^@register\("(\w+)"\)', path.read_text(), re.M)
        assert sorted(registered) == sorted(course.step(number).names), path.name


@pytest.mark.parametrize("number", [n for n in NUMBERS if n not in KERNELS])
def test_public_names_and_signatures_match(number):
    skeleton = importlib.import_module(f"steps.step_{number:02d}")
    solution = importlib.import_module(f"solutions.solution_{number:02d}")
    for name in course.step(number).names:
        mine, ref = getattr(skeleton, name), getattr(solution, name)
        assert type(mine) is type(ref), name
        if inspect.isfunction(ref):
            assert _signature(mine) == _signature(ref), name
        elif inspect.isclass(ref) and not dataclasses.is_dataclass(ref):
            for method in ("__init__", "forward"):
                if method in vars(ref):
                    assert _signature(getattr(mine, method)) == _signature(getattr(ref, method)), (
                        f"{name}.{method}"
                    )
