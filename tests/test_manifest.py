"""The manifest (course.toml) is the course's one registry: everything else agrees with it.

pixi's tasks, the book's SUMMARY.md and contract page, README's table of steps are written
from it (`python -m checks sync`, checks/derived.py) and held to it here, as are the specs,
the skeletons' and solutions' public names and signatures, and the steps `python -m gpt2`
uses. Nothing outside this repository is read.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re

import pytest
from checker_helpers import pixi_tasks

from checks import derived, engine
from gpt2 import course
from gpt2.course import ROOT

STEPS = course.steps()
NUMBERS = [s.number for s in STEPS]


def test_steps_are_numbered_from_one_without_gaps():
    assert NUMBERS == list(range(1, len(NUMBERS) + 1))


def test_every_spec_is_in_the_manifest_and_back():
    specs = sorted(int(p.stem[-2:]) for p in (ROOT / "checks" / "specs").glob("step_??.py"))
    assert specs == NUMBERS


def test_pixi_has_one_task_per_step_and_no_other_step_task():
    tasks = pixi_tasks()
    steps = sorted(int(name[1:]) for name in tasks if re.fullmatch(r"s\d\d", name))
    assert steps == NUMBERS
    for number in NUMBERS:
        assert tasks[f"s{number:02d}"] == f"python -m checks {number:02d}"


def test_summary_lists_every_chapter_with_its_manifest_title_in_order():
    summary = (ROOT / "book" / "src" / "SUMMARY.md").read_text()
    listed = re.findall(r"\[([^\]]+)\]\(step_(\d\d)\.md\)", summary)
    assert [(title, int(n)) for title, n in listed] == [(s.title, s.number) for s in STEPS]


def test_readme_table_is_the_manifest():
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"(?m)^\| (\d\d) \| (.+?) \|$", readme)
    assert [(int(n), text) for n, text in rows] == [(s.number, s.you_write) for s in STEPS]


@pytest.mark.parametrize("path", list(derived.rendered()), ids=lambda p: p.name)
def test_every_derived_file_is_what_the_manifest_writes(path):
    assert path.read_text() == derived.rendered()[path], (
        f"{path.relative_to(ROOT)} is out of date: `python -m checks sync` rewrites it"
    )
    assert "(contract.md)" in (ROOT / "book" / "src" / "SUMMARY.md").read_text()


def test_the_contract_page_would_show_a_change():
    changed = dataclasses.replace(STEPS[0], title=STEPS[0].title)
    public = dataclasses.replace(changed.public[0], signature="(something_else: int)")
    entries = (dataclasses.replace(changed, public=(public,)), *STEPS[1:])
    assert derived.contract("", entries) != derived.contract("", STEPS)


@pytest.mark.parametrize("entry", STEPS, ids=[s.tag for s in STEPS])
def test_spec_kind_agrees_with_the_manifest(entry):
    spec = engine.spec(entry.number)
    assert (spec.module is not None) == (entry.kind == "module")
    if spec.module is not None:
        assert spec.module.name in entry.names


_MODULE_PREFIX = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Z]\w*)")


def plain_signature(text: str) -> str:
    """A signature as the manifest writes it: no module paths (``max.experimental.tensor.
    Tensor`` → ``Tensor``), no quotes around postponed annotations."""
    return _MODULE_PREFIX.sub("", text.replace("'", ""))


def _signature(obj) -> str:
    if inspect.isclass(obj) and not dataclasses.is_dataclass(obj):
        parts = [
            f"{method}{inspect.signature(getattr(obj, method))}"
            for method in ("__init__", "forward")
            if method in vars(obj)
        ]
        return plain_signature("; ".join(parts))
    return plain_signature(str(inspect.signature(obj)))


PYTHON_STEPS = [s for s in STEPS if s.kind != course.KERNEL]  # a kernel step's: Mojo ops


@pytest.mark.parametrize("entry", PYTHON_STEPS, ids=[s.tag for s in PYTHON_STEPS])
def test_skeleton_and_solution_define_the_manifests_names_and_signatures(entry):
    skeleton = importlib.import_module(f"steps.step_{entry.tag}")
    solution = importlib.import_module(f"solutions.solution_{entry.tag}")
    for public in entry.public:
        for module in (skeleton, solution):
            assert hasattr(module, public.name), f"{module.__name__} lacks {public.name}"
            obj = getattr(module, public.name)
            if module is skeleton and dataclasses.is_dataclass(obj):
                continue  # a config's fields are what the learner writes
            assert _signature(obj) == public.signature, f"{module.__name__}.{public.name}"


def test_gpt2_command_takes_its_steps_from_the_manifest():
    from gpt2 import cli

    SERVED = cli.SERVED
    for name in cli.ROLES.values():
        assert name in course.defining(name).names
    assert SERVED in course.defining(SERVED).names
    # The course ends with what the command needs: generation, then serving, then the
    # kernels --mine puts into the model.
    kernels = [s.number for s in STEPS if s.kind == course.KERNEL]
    assert sorted({*cli._model_steps(), cli.SERVED_STEP, *kernels}) == NUMBERS
    assert course.defining("gpt2_gelu").kind == course.KERNEL


def test_plain_signature_drops_module_paths_only():
    text = (
        "(x: max.experimental.tensor.Tensor, y: np.ndarray) -> 'solutions.solution_01.GPT2Config'"
    )
    assert plain_signature(text) == "(x: Tensor, y: np.ndarray) -> GPT2Config"
