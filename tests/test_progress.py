"""`python -m checks progress`: a table of every step that re-checks only what changed.

Runs on a throw-away copy of the course (steps 01-06) with its own progress file.
"""

from __future__ import annotations

import json
import re

import pytest
from checker_helpers import ROOT, assert_clean, copy_repo, run_checks

# Compiles graphs the default run does not (minutes on a machine that has not compiled
# them before); run with -m slow.
pytestmark = pytest.mark.slow

ROW = re.compile(
    r"^\W*(\d\d)\s*│\s*(.+?)\s*│\s*(not started|failed|passed|missing)\s*│\s*(.*?)\s*│", re.M
)


def table(output: str) -> dict[str, tuple[str, str]]:
    """{step: (status, first problem)} from the printed table."""
    return {m.group(1): (m.group(3), m.group(4)) for m in ROW.finditer(output)}


def progress(root):
    result = run_checks("progress", cwd=root)
    assert_clean(result.stdout)
    return result


@pytest.fixture
def repo(tmp_path):
    return copy_repo(tmp_path / "course")


def test_progress_checks_each_step_once_then_reuses_unchanged_results(repo):
    first = progress(repo)
    assert first.returncode == 1  # nothing passes yet
    rows = table(first.stdout)
    assert sorted(rows) == ["01", "02", "03", "04", "05", "06"], first.stdout
    assert all(status == "not started" for status, _ in rows.values()), first.stdout
    assert rows["04"][1] == "GPT2MLP.__init__ is still a TODO"
    assert "Checked now: 01, 02, 03, 04, 05, 06." in first.stdout
    assert "Next: read book/src/step_01.md and run `python -m checks 01`." in first.stdout
    saved = json.loads((repo / ".cache" / "checks" / "progress.json").read_text())
    assert sorted(saved) == sorted(rows)

    second = progress(repo)
    assert "Checked now: none. Unchanged since their last check: 6." in second.stdout
    assert table(second.stdout) == rows

    # The learner finishes step 04: only step 04 is checked again.
    (repo / "steps" / "step_04.py").write_text((ROOT / "solutions" / "solution_04.py").read_text())
    third = progress(repo)
    assert "Checked now: 04. Unchanged since their last check: 5." in third.stdout
    assert table(third.stdout)["04"] == ("passed", "")
    assert table(third.stdout)["01"] == rows["01"]
    assert third.returncode == 1


def test_a_single_check_counts_towards_progress_but_another_file_does_not(repo):
    progress(repo)
    (repo / "steps" / "step_05.py").write_text((ROOT / "solutions" / "solution_05.py").read_text())
    single = run_checks("05", cwd=repo)
    assert single.returncode == 0, single.stdout
    # Step 06 checked on another file (the reference) must not mark step 06 as passed.
    other = run_checks("06", "--file", str(repo / "solutions" / "solution_06.py"), cwd=repo)
    assert other.returncode == 0, other.stdout
    after = progress(repo)
    assert "Checked now: none." in after.stdout  # 05's result came from `python -m checks 05`
    rows = table(after.stdout)
    assert rows["05"] == ("passed", "")
    assert rows["06"][0] == "not started"


def test_a_failing_step_shows_its_first_problem(repo):
    source = (ROOT / "solutions" / "solution_04.py").read_text()
    broken = source.replace("self.c_fc(hidden_states)", "self.c_fc(hidden_states", 1)
    assert broken != source
    (repo / "steps" / "step_04.py").write_text(broken)
    result = progress(repo)
    status, detail = table(result.stdout)["04"]
    assert status == "failed"
    assert detail.startswith("Python cannot read your file")


def test_a_step_stopped_by_the_time_limit_is_recorded_as_failing(repo):
    source = (ROOT / "solutions" / "solution_04.py").read_text()
    endless = "    def forward(self, hidden_states: Tensor) -> Tensor:\n"
    assert endless in source
    looping = source.replace(endless, endless + "        while True:\n            pass\n", 1)
    (repo / "steps" / "step_04.py").write_text(looping)
    first = run_checks("progress", "--time-limit", "4", cwd=repo)
    assert_clean(first.stdout)
    status, detail = table(first.stdout)["04"]
    assert status == "failed"
    assert "did not finish within 4 s" in detail
    assert table(first.stdout)["05"][0] == "not started"  # the table went on after the stop
    again = run_checks("progress", "--time-limit", "4", cwd=repo)
    assert "Checked now: none." in again.stdout  # the stopped step is not run again


def test_a_damaged_progress_file_is_rebuilt(repo):
    state = repo / ".cache" / "checks" / "progress.json"
    state.write_text("{ not json")
    result = progress(repo)
    assert "Checked now: 01, 02, 03, 04, 05, 06." in result.stdout
    json.loads(state.read_text())
