"""What a learner installs is what a learner needs; the rest is the test environment's.

pixi's default environment must not carry the course's test tools, and the tasks that need
them must run in the test environment; pip's install (pyproject.toml) likewise keeps them in
the ``test`` extra. Code a learner runs reads nothing under ``tests/``.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from checker_helpers import ROOT, pixi_tasks

TEST_TOOLS = ("pytorch-cpu", "pytest", "mdbook", "matplotlib-base", "ruff", "playwright")
PIXI = tomllib.loads((ROOT / "pixi.toml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_default_environment_has_no_test_tools():
    default = set(PIXI["dependencies"])
    assert not default & set(TEST_TOOLS), default & set(TEST_TOOLS)
    assert "modular" in default


def test_the_test_environment_adds_every_test_tool():
    assert PIXI["environments"]["test"] == ["test"]
    assert set(TEST_TOOLS) <= set(PIXI["feature"]["test"]["dependencies"])


@pytest.mark.parametrize("task", ["test", "lint", "book", "build-book"])
def test_tasks_that_need_test_tools_run_in_the_test_environment(task):
    assert task not in PIXI["tasks"]
    assert task in pixi_tasks("test")


def test_pip_keeps_test_tools_in_the_test_extra():
    runtime = " ".join(PYPROJECT["project"]["dependencies"])
    extra = " ".join(PYPROJECT["project"]["optional-dependencies"]["test"])
    for tool in ("torch", "pytest", "mdbook", "matplotlib", "ruff", "playwright"):
        assert tool not in runtime, tool
        assert tool in extra, tool


def test_every_pixi_task_is_the_pip_command_the_readme_gives():
    readme = (ROOT / "README.md").read_text()
    pairs = dict(re.findall(r"(?m)^\| `pixi run ([\w-]+)[^`]*` \| `([^`]+)` \|$", readme))
    for task, command in pixi_tasks().items():
        if re.fullmatch(r"s\d\d", task):
            continue
        if task in pairs:
            assert command.startswith(pairs[task].split(' "')[0].split(" 0")[0]), task


RUNTIME = ("checks", "gpt2", "solutions", "steps")


def _paths_into_tests(source: str) -> list[str]:
    """String constants of ``source`` that name a place under tests/ (docstrings and the
    pytest command lines a contributor is told to run are not places)."""
    import ast

    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            text = node.value
            if (text == "tests" or re.search(r"(^|/)tests/", text)) and "pytest" not in text:
                found.append(text)
    return found


@pytest.mark.parametrize("folder", RUNTIME)
def test_code_a_learner_runs_reads_nothing_under_tests(folder):
    for path in sorted((ROOT / folder).rglob("*.py")):
        assert not _paths_into_tests(path.read_text()), f"{path} refers to tests/"


def test_the_tests_detector_detects_a_path_into_tests():
    assert _paths_into_tests('ROOT / "tests" / "fixtures"\n')
    assert _paths_into_tests('open("tests/fixtures/x")\n')
    assert not _paths_into_tests('"""See tests/test_x.py."""\n')


def _readme_block(marker: str) -> list[str]:
    readme = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- ci: {re.escape(marker)}\b.*?-->\n```\w*\n(.*?)```", readme, re.S)
    assert found, f"README.md has no block marked 'ci: {marker}' (.ci/run reads it)"
    return [line.split("#")[0].strip() for line in found.group(1).splitlines()]


def test_the_setup_chapter_gives_readmes_set_up_lines():
    """CI runs README's set-up lines as written (.ci/run); the book's must be the same."""
    chapter = (ROOT / "book" / "src" / "setup.md").read_text()
    commands = {line[2:].strip() for line in chapter.splitlines() if line.startswith("$ ")}
    for marker in ("pip set-up", "test set-up"):
        for line in _readme_block(marker)[:2]:
            assert line in commands, f"book/src/setup.md does not give README's line: {line}"


def test_ci_runs_readmes_set_up_lines():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'readme_lines.py "pip set-up"' in ci and 'readme_lines.py "test set-up"' in ci
    assert "pip install" not in ci  # every install line comes from README.md
    first = _readme_block("pip set-up")[0]
    assert first.startswith("python3 -m venv .venv && . .venv/bin/activate && ")


def test_readmes_newcomer_figures_are_the_recorded_runs():
    """README quotes benchmarks/newcomer.py's recorded run (book/data/newcomer-cpu.json,
    rendered by scripts/make_figures.py, which tests/test_book.py holds to the data): the
    set-up line it timed is README's own, and the first check answered."""
    import json

    run = json.loads((ROOT / "book" / "data" / "newcomer-cpu.json").read_text())
    assert run["first_check_answered"]
    assert run["setup_line"] in (ROOT / "README.md").read_text(), "README's set-up line changed"
