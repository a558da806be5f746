"""Helpers for the tests that run `python -m checks` the way a learner does: in a subprocess.

``copy_repo`` makes a throw-away copy of the course (steps 01-06 only), with its own progress
file. Tests never write into the real repo.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from gpt2 import course

ROOT = course.ROOT
STEPS = range(1, 7)  # the steps every copy keeps; later ones may be half-written elsewhere

NUMBERED = re.compile(r"(?:step|solution)_(\d\d)\.(?:py|md|mojo)")


def _keep(name: str, steps) -> bool:
    m = NUMBERED.fullmatch(name)
    return m is None or int(m.group(1)) in steps


def copy_repo(dest: Path, steps=STEPS) -> Path:
    """A copy of the course under ``dest`` with only ``steps`` (None: the whole course, with
    everything its test suite reads); returns its root."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build")
    folders = ["checks", "gpt2", "solutions", "steps", "book", "tests"]
    if steps is None:
        steps = range(1, 100)
        folders += ["benchmarks", "scripts", ".ci"]
        for name in ("CONTRIBUTING.md", "LICENSE", ".gitignore"):
            shutil.copy2(ROOT / name, dest / name)
    for folder in folders:
        src = ROOT / folder
        if not src.exists():
            continue
        shutil.copytree(src, dest / folder, ignore=ignore)
        for path in list((dest / folder).rglob("*")):
            if path.is_file() and not _keep(path.name, steps):
                path.unlink()
    for name in ("pixi.toml", "pyproject.toml", "course.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    # Registrations of the steps left out go too, so the copy is a consistent course.
    _drop_lines(dest / "pixi.toml", r"^s(\d\d)\s*=", steps)
    _drop_lines(dest / "book" / "src" / "SUMMARY.md", r"\(step_(\d\d)\.md\)", steps)
    _drop_manifest_entries(dest / "course.toml", steps)
    _drop_lines(dest / "README.md", r"^\| (\d\d) \|", steps)
    from checks import derived

    for path, text in derived.rendered(dest).items():  # the contract page, for these steps
        path.write_text(text)
    (dest / ".cache" / "checks").mkdir(parents=True)
    return dest


def _drop_lines(path: Path, pattern: str, steps) -> None:
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        m = re.search(pattern, line)
        if m is None or int(m.group(1)) in steps:
            kept.append(line)
    path.write_text("".join(kept))


def _drop_manifest_entries(path: Path, steps) -> None:
    """The manifest's [[step]] entries of the steps left out go (each runs to the next)."""
    if not path.exists():
        return
    text = path.read_text()
    head, *entries = re.split(r"(?m)^(?=\[\[step\]\]$)", text)
    kept = [e for e in entries if int(re.search(r"(?m)^number = (\d+)$", e).group(1)) in steps]
    path.write_text(head + "".join(kept))


def env_for(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("GPT2_CHECKS_CACHE", None)  # the copy's own .cache/checks
    env.pop("GPT2_CHECKS_IN_PROCESS", None)
    for name in ("PIXI_PROJECT_ROOT", "PIXI_ENVIRONMENT_NAME"):  # a pip learner, unless set
        env.pop(name, None)
    env["PYTHONPATH"] = str(root)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "200"
    return env


def run_checks(
    *args: str, cwd: Path = ROOT, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`python -m checks ARGS` in a subprocess, as a learner runs it; stdout and stderr merged.
    ``env``: variables to set on top of the learner's environment."""
    return subprocess.run(
        [sys.executable, "-m", "checks", *args],
        cwd=cwd,
        env={**env_for(cwd), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def assert_clean(output: str) -> None:
    """No raw traceback, and nothing that points into MAX's installed package."""
    for line in output.splitlines():
        assert not line.lstrip().startswith("Traceback"), output
        assert not re.search(r"site-packages[/\\]max", line), output


def pixi_tasks(environment: str | None = None) -> dict[str, str]:
    """pixi.toml's tasks: the default environment's, plus those of ``environment``'s features
    (None: every feature's)."""
    import tomllib

    data = tomllib.loads((ROOT / "pixi.toml").read_text())
    tasks = dict(data.get("tasks", {}))
    features = (
        data.get("environments", {}).get(environment, [])
        if environment
        else data.get("feature", {})
    )
    for name in features:
        tasks.update(data.get("feature", {}).get(name, {}).get("tasks", {}))
    return tasks
