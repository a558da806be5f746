"""What a check's result depends on, as one digest: the basis of ``progress`` and the warm-up.

A stored result (``progress``), or a finished warm-up, stays valid while its digest is the
same: the learner's file, every file of the checker and of the reference solutions, the data
the checks read, MAX's version and the device. ``python -m gpt2 --mine`` uses the same digest
to know which of the learner's steps pass. Nothing here imports MAX.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from checks import paths

ROOT = paths.ROOT


def max_version() -> str:
    try:
        from importlib.metadata import version

        return version("max")
    except Exception:
        return "unknown"


def course_files() -> list[Path]:
    """Every file a check's result depends on, besides the learner's own."""
    files = sorted((ROOT / "checks").rglob("*.py"))  # the checker, with its specs
    files += sorted((ROOT / "solutions").glob("*.py"))
    files += sorted((ROOT / "gpt2").glob("*.py"))  # the plumbing steps 11-13 import
    files += sorted(p for p in paths.DATA.rglob("*") if p.is_file())  # what the checks read
    files.append(ROOT / "course.toml")
    return files


def digest(paths: Iterable[Path], extra: str = "") -> str:
    """One SHA-256 over the names and contents of ``paths`` (a missing file counts too),
    MAX's version and ``extra``."""
    h = hashlib.sha256()
    for path in paths:
        h.update(str(Path(path).resolve().relative_to(ROOT) if _inside(path) else path).encode())
        try:
            h.update(Path(path).read_bytes())
        except OSError:
            h.update(b"<missing>")
    h.update(f"|{max_version()}|{extra}".encode())
    return h.hexdigest()


def of_check(file: Path, device: str) -> str:
    """The digest of one check: the learner's ``file`` on ``device`` ("cpu" or "gpu")."""
    return digest([Path(file), *course_files()], extra=device)


def _inside(path: Path) -> bool:
    try:
        Path(path).resolve().relative_to(ROOT)
        return True
    except ValueError:
        return False
