"""Run the learner's code without letting it take the checker down.

Whatever the learner's file does (raise, print a lot, call ``sys.exit``), it reaches the
checker as a ``Problem``: one short, exact account pointing at the learner's own file and
line. MAX's internal frames never reach the screen.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import linecache
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

from checks.explain import explain

MAX_PRINTED_LINES = 8


@dataclass
class Problem(Exception):
    """Something the learner's code did that stops the check."""

    kind: str  # not-started | syntax | import | missing | exit | error | output
    title: str
    detail: str = ""
    file: str | None = None
    line: int | None = None
    source: str | None = None
    caret: int | None = None
    meaning: str = ""
    printed: list[str] = field(default_factory=list)

    def __str__(self) -> str:  # pragma: no cover - for debugging only
        return f"{self.kind}: {self.title}"


class _Captured(io.StringIO):
    """Collects what the learner's code prints, keeping the first lines only."""

    def lines(self) -> list[str]:
        text = self.getvalue().splitlines()
        if len(text) > MAX_PRINTED_LINES:
            more = len(text) - MAX_PRINTED_LINES
            return text[:MAX_PRINTED_LINES] + [f"... ({more} more lines)"]
        return text


@contextlib.contextmanager
def guarded(path: Path, doing: str):
    """Run learner code: capture its output, and turn anything it raises into a Problem."""
    out = _Captured()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield out
    except Problem as problem:
        problem.printed = problem.printed or out.lines()
        raise
    except SystemExit as exc:
        raise Problem(
            "exit",
            f"Your code called sys.exit({exc.code!r}) while {doing}.",
            "A step file should define things, not end the program; remove the exit call.",
            printed=out.lines(),
            **_locate(exc, path),
        ) from None
    except NotImplementedError as exc:
        where = _locate(exc, path)
        if where.get("file"):
            raise Problem(
                "not-started",
                f"{exc} is still a TODO" if str(exc) else "a TODO is left",
                printed=out.lines(),
                **where,
            ) from None
        raise _as_problem(exc, path, doing, out) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the learner's code may raise anything
        raise _as_problem(exc, path, doing, out) from None


def _as_problem(exc: BaseException, path: Path, doing: str, out: _Captured) -> Problem:
    message = _first_lines(exc)
    where = _locate(exc, path)
    title = f"{type(exc).__name__} while {doing}"
    return Problem(
        "error",
        title,
        message,
        meaning=explain(f"{type(exc).__name__}: {exc}"),
        printed=out.lines(),
        **where,
    )


def _first_lines(exc: BaseException, limit: int = 2, width: int = 300) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    short = lines[:limit]
    out = "\n".join(ln if len(ln) <= width else ln[: width - 1] + "…" for ln in short)
    return out


def _locate(exc: BaseException, path: Path) -> dict:
    """The deepest frame of the traceback that lies in the learner's file."""
    target = str(path.resolve())
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            if str(Path(frame.filename).resolve()) == target:
                found = frame
        except (OSError, ValueError):
            continue
    if found is None:
        return {}
    return {
        "file": str(path),
        "line": found.lineno,
        "source": (linecache.getline(found.filename, found.lineno) or "").rstrip(),
    }


def load(path: Path, module_name: str) -> types.ModuleType:
    """Import the learner's file as a fresh module, never writing anything next to it."""
    if not path.exists():
        raise Problem(
            "missing",
            f"{path} does not exist.",
            "Restore it with `git checkout -- " + str(path) + "`, or pass --file PATH.",
        )
    source = path.read_bytes()
    if not source.strip():
        raise Problem(
            "missing",
            f"{path} is empty.",
            "Restore the skeleton with `git checkout -- " + str(path) + "` and start again.",
        )
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise Problem(
            "syntax",
            f"Python cannot read your file: {exc.msg}",
            file=str(path),
            line=exc.lineno,
            source=(exc.text or "").rstrip("\n"),
            caret=exc.offset,
        ) from None
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    with guarded(path, "importing your file"):
        exec(code, module.__dict__)  # noqa: S102 - this is the learner's own file
    return module


def require(module: types.ModuleType, names: tuple[str, ...], path: Path) -> None:
    missing = [n for n in names if not hasattr(module, n)]
    if missing:
        raise Problem(
            "missing",
            f"{path} does not define {', '.join(missing)}.",
            "The check looks these names up in your file; keep the names the skeleton gives.",
        )
