"""The hint ladder: three levels per step in the manifest, shown one at a time, remembered,
never the solution's code; and every command the checker prints is the learner's own path."""

from __future__ import annotations

import re

import pytest
from checker_helpers import ROOT, run_checks

from checks import hints
from gpt2 import course

STEPS = course.steps()
REGION = re.compile(
    r"# ---- your code starts here ----\n(.*?)# ---- your code ends here ----", re.S
)


@pytest.mark.parametrize("entry", STEPS, ids=[s.tag for s in STEPS])
def test_every_step_has_every_level(entry):
    assert len(entry.hints) == len(hints.LEVELS), f"step {entry.tag}: {len(entry.hints)} hints"
    assert all(len(h) > 40 for h in entry.hints), "a hint too short to help"
    assert len(set(entry.hints)) == len(entry.hints), "two levels say the same"


def _solution_lines(number: int) -> list[str]:
    """The lines a learner writes in the solution: code, stripped, long enough to matter."""
    text = course.solution_file(number).read_text()
    lines = []
    for region in REGION.finditer(text):
        for line in region.group(1).splitlines():
            code = line.split("#")[0].strip()
            if len(code) >= 12:
                lines.append(code)
    return lines


@pytest.mark.parametrize("entry", STEPS, ids=[s.tag for s in STEPS])
def test_no_hint_holds_the_solutions_code(entry):
    for level, text in enumerate(entry.hints, 1):
        for line in _solution_lines(entry.number):
            assert line not in text, f"hint {level} of step {entry.tag} holds {line!r}"


def test_the_code_detector_detects_code():
    assert "return self.c_proj(hidden_states)" in _solution_lines(4)


def test_the_ladder_climbs_remembers_and_starts_again(tmp_path):
    env = {"GPT2_CHECKS_CACHE": str(tmp_path / "cache")}
    shown = []
    for _ in range(len(hints.LEVELS) + 1):
        result = run_checks("06", "--hint", env=env)
        assert result.returncode == 0, result.stdout
        shown.append(result.stdout)
    for level in range(1, len(hints.LEVELS) + 1):
        assert f"hint {level} of {len(hints.LEVELS)}" in shown[level - 1]
        assert course.step(6).hints[level - 1][:40] in " ".join(shown[level - 1].split())
    assert f"hint {len(hints.LEVELS)} of" in shown[-1]  # the last one again
    assert "last hint" in shown[-1]
    reset = run_checks("06", "--hint", "0", env=env)
    assert "start again at 1" in reset.stdout
    again = run_checks("hint", "06", env=env)  # what `pixi run hint 06` runs
    assert f"hint 1 of {len(hints.LEVELS)}" in again.stdout


def test_a_failing_check_says_which_hint_comes_next(tmp_path):
    env = {"GPT2_CHECKS_CACHE": str(tmp_path / "cache")}
    result = run_checks("05", env=env)  # the untouched skeleton
    assert "NOT STARTED" in result.stdout
    broken = tmp_path / "step_05.py"
    broken.write_text(
        (ROOT / "solutions" / "solution_05.py")
        .read_text()
        .replace("class GPT2TokenEmbeddings", "class Other")
    )
    result = run_checks("05", "--file", str(broken), env=env)
    assert result.returncode == 1
    assert "python -m checks 05 --hint` shows hint 1 of 3 (the idea)" in result.stdout
    run_checks("05", "--hint", env=env)
    result = run_checks("05", "--file", str(broken), env=env)
    assert "shows hint 2 of 3 (the ops to use)" in result.stdout


def test_pip_users_are_told_pip_commands_and_pixi_users_pixi_tasks(tmp_path):
    broken = tmp_path / "step_05.py"
    broken.write_text("x = 1\n")
    env = {"GPT2_CHECKS_CACHE": str(tmp_path / "cache")}
    pip = run_checks("05", "--file", str(broken), env=env).stdout
    assert "run `python -m checks 05` again" in pip and "pixi" not in pip
    pixi_env = {**env, "PIXI_PROJECT_ROOT": str(ROOT), "PIXI_ENVIRONMENT_NAME": "default"}
    pixi = run_checks("05", "--file", str(broken), env=pixi_env).stdout
    assert "run `pixi run s05` again" in pixi
    assert "`pixi run hint 05`" in pixi
