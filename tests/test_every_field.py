"""Checks see every config field: a module that ignores one, using GPT-2 small's value instead
(768 for n_embd, 12 heads, 4 · n_embd for the MLP, eps 1e-5, …), fails its check.

The check's config gives every field a value of its own (``checks.spec.SMALL_CONFIG``), and
builds modules with GPT-2's n_inner = None too (``OTHER_CONFIGS``). Most fields change the
parameters' shapes, which the check compares without running anything; the others (the head
count, eps) change the numbers, which the eager run shows. The
knobs of sampling are tested together in step 12's cases, and a sampler that takes them in
the wrong order is a known mistake there (tests/test_meta.py runs its example).
"""

from __future__ import annotations

import dataclasses

import pytest

from checks import engine
from checks.spec import SMALL_CONFIG
from solutions.solution_01 import GPT2Config

GPT2_SMALL = GPT2Config()
# The fields each module step's module reads from its config.
USES = {
    3: ("layer_norm_epsilon",),
    4: ("n_embd",),
    5: ("vocab_size", "n_embd"),
    6: ("n_positions", "n_embd"),
    7: ("n_embd", "n_head"),
    8: ("n_embd", "n_head", "n_inner", "layer_norm_epsilon"),
    9: tuple(f.name for f in dataclasses.fields(GPT2Config)),
    10: tuple(f.name for f in dataclasses.fields(GPT2Config)),
}


def test_the_checks_config_differs_from_gpt2_small_in_every_field():
    for f in dataclasses.fields(GPT2Config):
        assert SMALL_CONFIG[f.name] != getattr(GPT2_SMALL, f.name), f.name


def _ignoring(number: int, field: str) -> str:
    """A learner's file for step ``number`` whose module uses GPT-2 small's ``field``."""
    name = engine.spec(number).module.name
    value = getattr(GPT2_SMALL, field)
    if number == 3:  # LayerNorm(dim, *, eps): the learner keeps the default eps
        init = "    def __init__(self, dim, *, eps=1e-5):\n        super().__init__(dim)\n"
    else:
        init = (
            "    def __init__(self, *args):\n"
            "        args = [dataclasses.replace(a, "
            f"{field}={value!r}) if isinstance(a, GPT2Config) else a for a in args]\n"
            "        super().__init__(*args)\n"
        )
    return (
        "import dataclasses\n\n"
        "from solutions.solution_01 import GPT2Config\n"
        f"from solutions.solution_{number:02d} import {name} as _Reference\n\n\n"
        f"class {name}(_Reference):\n{init}"
    )


CASES = [
    pytest.param(
        number,
        field,
        id=f"{number:02d}-{field}",
    )
    for number, fields in USES.items()
    for field in fields
]


@pytest.mark.parametrize("number,field", CASES)
def test_a_module_that_ignores_a_field_fails(number, field, tmp_path, cpu):
    path = tmp_path / f"step_{number:02d}.py"
    path.write_text(_ignoring(number, field))
    report = engine.check(number, path, cpu)
    assert not report.passed, f"step {number:02d} passes a module that ignores {field}"
    assert report.problem is None, report.problem  # a real check, not a crash


def test_the_reference_itself_passes_the_same_way(tmp_path, cpu):
    """The harness above is sound: a file that ignores nothing passes."""
    path = tmp_path / "step_05.py"
    path.write_text(
        "from solutions.solution_05 import GPT2TokenEmbeddings as _Reference\n\n\n"
        "class GPT2TokenEmbeddings(_Reference):\n    pass\n"
    )
    assert engine.check(5, path, cpu).passed
