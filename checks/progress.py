"""The learner's results, kept between runs in ``.cache/checks/progress.json``.

Only the learner's own step files count. A stored result holds while its fingerprint does
(``checks.fingerprint``: the learner's file, the checker, the solutions, the data the checks
read, MAX's version and the device), so ``progress`` re-checks only what changed, and
``python -m gpt2 --mine`` knows which of the learner's steps pass. Nothing here imports MAX.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from checks import fingerprint, paths

# The one vocabulary of a check's outcome, for reports, progress and the parent process.
PASSED, FAILED, NOT_STARTED, MISSING = "passed", "failed", "not started", "missing"
STATUSES = (PASSED, FAILED, NOT_STARTED, MISSING)


@dataclass(frozen=True)
class Stored:
    status: str  # one of STATUSES
    detail: str  # the first problem, for the table
    fingerprint: str
    compiled: bool = True  # False: the module ran eagerly; the next check runs it compiled


def _file() -> Path:
    return paths.cache_dir() / "progress.json"


def load() -> dict[int, Stored]:
    try:
        data = json.loads(_file().read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for key, value in data.items() if isinstance(data, dict) else ():
        try:
            found[int(key)] = Stored(**value)
        except (TypeError, ValueError):
            continue
    return found


def store(number: int, result: Stored) -> None:
    state = {f"{n:02d}": asdict(s) for n, s in load().items()}
    state[f"{number:02d}"] = asdict(result)
    path = _file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(path)  # never a half-written file, even with two commands at once
    except OSError:
        pass


def is_own(number: int, path: Path | str) -> bool:
    """Whether ``path`` is the learner's own file of step ``number`` (what progress counts)."""
    try:
        return Path(path).resolve() == paths.step_file(number).resolve()
    except OSError:
        return False


def fresh(number: int, device: str) -> Stored | None:
    """The stored result of step ``number`` if it is for these very files on ``device``."""
    stored = load().get(number)
    path = paths.step_file(number)
    if stored is None or not path.exists():
        return None
    return stored if stored.fingerprint == fingerprint.of_check(path, device) else None


def settled(number: int, device: str) -> Stored | None:
    """A fresh stored result that needs no new check: not one from an eager run."""
    stored = fresh(number, device)
    return stored if stored is not None and stored.compiled else None


def passing(numbers, devices=("cpu", "gpu")) -> list[int]:
    """Of ``numbers``, the steps whose learner file passed its check, on any of ``devices``."""
    return [
        n
        for n in numbers
        if any((s := fresh(n, d)) is not None and s.status == PASSED for d in devices)
    ]
