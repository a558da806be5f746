"""CONTRIBUTING.md shows real code: its listings stand in the files they name, its commands
name real commands, and its recipe for seeing a known mistake caught works as written."""

from __future__ import annotations

import re
import subprocess

import pytest
from checker_helpers import assert_clean, env_for, pixi_tasks

from checks import cli
from gpt2.course import ROOT

TEXT = (ROOT / "CONTRIBUTING.md").read_text()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", TEXT, re.M | re.S)


def _code_lines(block: str) -> list[str]:
    lines = [line.split("  #")[0].rstrip() for line in block.splitlines()]
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("block", [b for lang, b in BLOCKS if lang == "python"])
def test_every_python_listing_stands_in_the_file_it_names(block):
    named = re.match(r"# (\S+\.py)\n", block)
    assert named, f"a listing that names no file: {block[:80]!r}"
    source = (ROOT / named.group(1)).read_text()
    for line in _code_lines(block):
        assert line.strip() in source, f"{named.group(1)} has no line {line.strip()!r}"


def _commands() -> list[str]:
    found = []
    for lang, block in BLOCKS:
        if lang == "bash":
            found += [line.split("  #")[0].strip() for line in block.splitlines()]
    return [c for c in found if c]


def test_every_command_shown_exists():
    tasks = pixi_tasks()
    for command in _commands():
        if command.startswith("pixi run "):
            assert command.split()[2] in tasks, command
        elif command.startswith("python -m checks "):
            word = command.split()[3]
            assert word in cli.COMMANDS or word == "NN" or cli.parse_step(word), command


def test_the_recipe_for_a_known_mistake_works_as_written():
    recipe = next(b for lang, b in BLOCKS if lang == "bash" and "/tmp/mine.py" in b)
    result = subprocess.run(
        ["bash", "-c", recipe],
        cwd=ROOT,
        env=env_for(ROOT),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert_clean(result.stdout)
    assert "FAILED step 04" in result.stdout, result.stdout + result.stderr
    assert "GELU goes between c_fc and c_proj, not after c_proj." in result.stdout
