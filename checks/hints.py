"""The hint ladder: ``python -m checks NN --hint`` shows the next level of help for a step.

Each step has three levels in the manifest (``course.toml``): the idea, then the ops to use,
then the shape of the code, never the code itself. The levels a learner has seen are kept
per step in ``.cache/checks/hints.json``; ``--hint 0`` starts a step's ladder again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gpt2 import course

LEVELS = ("the idea", "the ops to use", "the shape of the code")


def _file() -> Path:
    return course.cache_dir() / "hints.json"


def _load() -> dict[str, int]:
    try:
        data = json.loads(_file().read_text())
        return {k: int(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError, TypeError):
        return {}


def _save(state: dict[str, int]) -> None:
    path = _file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass


def seen(number: int) -> int:
    """How many levels of step ``number``'s ladder the learner has seen (0: none)."""
    return _load().get(f"{number:02d}", 0)


def count(number: int) -> int:
    return len(course.step(number).hints)


def take(number: int) -> tuple[int, str] | None:
    """The next level (its number from 1, and its text), remembered as seen; None when every
    level has been seen (the last one is shown again then, by ``again``)."""
    hints = course.step(number).hints
    level = seen(number) + 1
    if level > len(hints):
        return None
    state = _load()
    state[f"{number:02d}"] = level
    _save(state)
    return level, hints[level - 1]


def reset(number: int) -> None:
    state = _load()
    state.pop(f"{number:02d}", None)
    _save(state)
