"""Where the course's files are: one place for every module, script, benchmark and test.

Nothing here imports MAX (the checker's parent process uses it).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE_ENV = "GPT2_CHECKS_CACHE"  # moves the checker's cache (default: .cache/checks)
# What the checks read: the tiny GPT-2 of steps 11-13, in two checkpoint layouts, written by
# scripts/make_fixtures.py (the tests use it too).
DATA = ROOT / "checks" / "data"
TINY_GPT2 = DATA / "tiny-gpt2"


def cache_dir() -> Path:
    """The checker's cache: compiled graphs, progress, the warm-up's state and log, locks."""
    return Path(os.environ.get(CACHE_ENV, ROOT / ".cache" / "checks"))


def step_file(number: int) -> Path:
    return ROOT / "steps" / f"step_{number:02d}.py"


def solution_file(number: int) -> Path:
    return ROOT / "solutions" / f"solution_{number:02d}.py"


def chapter_file(number: int) -> Path:
    return ROOT / "book" / "src" / f"step_{number:02d}.md"
