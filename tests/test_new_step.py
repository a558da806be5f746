"""`python -m checks new-step "Title"` scaffolds a step that the test suite accepts as it is.

Always on a throw-away copy of the course, never on the real repository: steps 01-06 for
most tests; the whole course for the one that runs the whole default test run after it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from checker_helpers import assert_clean, copy_repo, env_for, run_checks

from checks import scaffold


def snapshot(root):
    return {
        p.relative_to(root): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".cache" not in p.parts
    }


# The tests that look at every step: what a new step must satisfy from the start.
PER_STEP_TESTS = (
    "tests/test_consistency.py",
    "tests/test_manifest.py",
    "tests/test_hints.py",
    "tests/test_meta.py",
)


def pytest_in(root, *args: str, timeout: float = 1800):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        env=env_for(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def consistency(root):
    """The per-step tests in a copy of steps 01-06 and the new one (the tests that need a
    later step, the gpt2 command's and step 13's, cannot run there)."""
    return pytest_in(root, *PER_STEP_TESTS, "-k", "not gpt2_command and not step13")


@pytest.fixture
def repo(tmp_path):
    root = copy_repo(tmp_path / "course")
    if not (root / "tests" / "test_consistency.py").exists():
        pytest.skip("tests/test_consistency.py is not in this checkout")
    return root


def test_dry_run_writes_nothing(repo):
    before = snapshot(repo)
    result = run_checks("new-step", "Rotary embeddings", "--dry-run", cwd=repo)
    assert result.returncode == 0, result.stdout
    assert "Step 07 · Rotary embeddings" in result.stdout
    assert "solutions/solution_07.py" in result.stdout
    assert "Dry run: nothing was written." in result.stdout
    assert snapshot(repo) == before


def test_new_module_step_passes_consistency_and_starts_not_started(repo):
    result = run_checks("new-step", "Rotary embeddings", cwd=repo)
    assert result.returncode == 0, result.stdout
    assert_clean(result.stdout)
    for part in (
        "steps/step_07.py",
        "solutions/solution_07.py",
        "checks/specs/step_07.py",
        "book/src/step_07.md",
    ):
        assert (repo / part).is_file(), part
    assert 's07 = "python -m checks 07"' in (repo / "pixi.toml").read_text()
    summary = (repo / "book" / "src" / "SUMMARY.md").read_text()
    lines = summary.splitlines()
    at = next(i for i, ln in enumerate(lines) if "(step_07.md)" in ln)
    assert "(step_06.md)" in lines[at - 1]  # listed right after the last step
    chapter = (repo / "book" / "src" / "step_07.md").read_text()
    assert "{{#include ../../steps/step_07.py:rotary_embeddings}}" in chapter
    assert "{{#include ../../solutions/solution_07.py:rotary_embeddings}}" in chapter
    assert "class RotaryEmbeddings(Module)" in (repo / "steps" / "step_07.py").read_text()

    checked = consistency(repo)
    assert checked.returncode == 0, checked.stdout

    skeleton = run_checks("07", cwd=repo)
    assert skeleton.returncode == 1
    assert "NOT STARTED step 07" in skeleton.stdout
    assert "RotaryEmbeddings.__init__ is still a TODO" in skeleton.stdout


def test_new_function_step_solution_passes_its_check(repo):
    assert run_checks("new-step", "Rotary embeddings", cwd=repo).returncode == 0
    result = run_checks("new-step", "Sampling temperature", "--kind", "function", cwd=repo)
    assert result.returncode == 0, result.stdout
    assert "Step 08 · Sampling temperature" in result.stdout  # the next free number

    solution = run_checks("08", "--file", "solutions/solution_08.py", cwd=repo)
    assert solution.returncode == 0, solution.stdout
    assert "PASSED step 08" in solution.stdout
    skeleton = run_checks("08", cwd=repo)
    assert "NOT STARTED step 08" in skeleton.stdout

    checked = consistency(repo)
    assert checked.returncode == 0, checked.stdout
    pixi = (repo / "pixi.toml").read_text()
    assert pixi.index("s07 = ") < pixi.index("s08 = ")


def test_nothing_is_overwritten(repo):
    (repo / "book" / "src" / "step_07.md").write_text("someone's draft\n")
    before = snapshot(repo)
    result = run_checks("new-step", "Rotary embeddings", cwd=repo)
    # A draft chapter 07 already claims the number: the new step becomes 08 and 07 stays.
    assert result.returncode == 0, result.stdout
    assert "Step 08" in result.stdout
    assert (repo / "book" / "src" / "step_07.md").read_text() == "someone's draft\n"
    changed = {p for p, data in snapshot(repo).items() if before.get(p) != data}
    assert {str(p) for p in changed} == {
        "steps/step_08.py",
        "solutions/solution_08.py",
        "checks/specs/step_08.py",
        "book/src/step_08.md",
        "course.toml",  # the manifest, the course's registry
        # written from the manifest (python -m checks sync)
        "pixi.toml",
        "book/src/SUMMARY.md",
        "book/src/contract.md",
        "README.md",
    }


def test_a_title_is_required(repo):
    before = snapshot(repo)
    result = run_checks("new-step", cwd=repo)
    assert result.returncode == 2
    assert "Give the step a title" in result.stdout
    assert snapshot(repo) == before


@pytest.mark.slow  # the whole default test run, in a copy: as long as that run (minutes)
def test_after_new_step_the_whole_default_test_run_passes(tmp_path):
    root = copy_repo(tmp_path / "course", steps=None)
    assert run_checks("new-step", "Rotary embeddings", cwd=root).returncode == 0
    result = pytest_in(root, timeout=3600)
    assert result.returncode == 0, result.stdout[-5000:]


@pytest.mark.parametrize(
    "title,kind,public,anchor",
    [
        ("Rotary embeddings", "module", "RotaryEmbeddings", "rotary_embeddings"),
        ("KV-cache (v2)", "module", "KVCacheV2", "kv_cache_v2"),
        ("top-p sampling", "function", "top_p_sampling", "top_p_sampling"),
        ("2D attention", "module", "Step2DAttention", "step_2d_attention"),
    ],
)
def test_names_are_valid_python(title, kind, public, anchor):
    names = scaffold.names_for(title, kind, 14)
    assert (names.public, names.anchor, names.nn) == (public, anchor, "14")
    assert names.public.isidentifier()
