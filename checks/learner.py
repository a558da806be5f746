"""Run the learner's code without letting it take the checker down.

Whatever the learner's file does (raise, print a lot, call ``sys.exit``), it reaches the
checker as a ``Problem``: one short, exact account pointing at the learner's own file and
line. MAX's internal frames never reach the screen.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import linecache
import re
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

from checks import channel, paths
from checks.explain import explain

MAX_PRINTED_LINES = 8
# Paths inside installed packages say nothing to a learner; messages drop them.
_PACKAGE_PATH = re.compile(
    r"\s*\(?['\"]?(?:[A-Za-z]:)?[^\s'\"()]*(?:site|dist)-packages[^\s'\"()]*['\"]?\)?"
)


@dataclass
class Problem(Exception):
    """Something the learner's code did that stops the check."""

    kind: str  # not-started | syntax | missing | exit | error | output | timeout | crash
    title: str
    detail: str = ""
    file: str | None = None
    line: int | None = None
    source: str | None = None
    caret: int | None = None
    meaning: str = ""
    printed: list[str] = field(default_factory=list)
    origin: str = ""  # for kind "error": "max" when MAX raised it, else "python"

    def __str__(self) -> str:  # pragma: no cover - for debugging only
        return f"{self.kind}: {self.title}"

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _shorten(text: list[str]) -> list[str]:
    if len(text) > MAX_PRINTED_LINES:
        more = len(text) - MAX_PRINTED_LINES
        return text[:MAX_PRINTED_LINES] + [f"... ({more} more lines)"]
    return text


class _Captured(io.StringIO):
    """Collects what the learner's code prints, keeping the first lines only."""

    def lines(self) -> list[str]:
        return _shorten(self.getvalue().splitlines())


# What the learner's code printed during the current check (see ``take_printed``): the
# first lines, and how many there were in all.
_printed: list[str] = []
_printed_count = 0
_last_block: list[str] = []


def take_printed() -> list[str]:
    """The first lines the learner's code printed since the last call, and forget them."""
    global _printed_count, _last_block
    lines = list(_printed)
    if _printed_count > len(lines):
        lines.append(f"... ({_printed_count - len(lines)} more lines)")
    _printed.clear()
    _printed_count = 0
    _last_block.clear()
    return lines


@contextlib.contextmanager
def guarded(path: Path, doing: str):
    """Run learner code: capture its output, and turn anything it raises into a Problem.

    While it runs, the parent process (``checks.supervisor``) holds it to a time limit; the
    compiles MAX does meanwhile do not count (``checks.runtime`` announces them).
    """
    out = _Captured()
    channel.enter(doing)
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
    finally:
        channel.leave()
        _keep_printed(out.getvalue().splitlines())


def _keep_printed(lines: list[str]) -> None:
    """Keep the first lines; a block identical to the one before (the checker traced the
    same ``forward`` again to compile it) is not repeated."""
    global _printed_count, _last_block
    if not lines or lines == _last_block:
        return
    _last_block = lines
    room = max(MAX_PRINTED_LINES - len(_printed), 0)
    _printed.extend(line if len(line) <= 200 else line[:199] + "…" for line in lines[:room])
    _printed_count += len(lines)


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
        origin=_origin(exc, path),
        **where,
    )


def _origin(exc: BaseException, path: Path) -> str:
    """Where the error came from: "max" if the innermost frame is in MAX's package."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "python"
    innermost = frames[-1].filename.replace("\\", "/")
    return "max" if "/max/" in innermost and "-packages/" in innermost else "python"


def scrub(text: str) -> str:
    """``text`` without paths into installed packages (MAX's, Python's)."""
    return _PACKAGE_PATH.sub("", text)


def _first_lines(exc: BaseException, limit: int = 2, width: int = 300) -> str:
    text = scrub(str(exc)).strip() or type(exc).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Traceback", 'File "'))]
    if "Diagnostics:" in lines[1:]:  # MAX: "Failed to create op …", inputs, then the reason
        at = lines.index("Diagnostics:")
        lines = [lines[0], *lines[at + 1 :]]
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
    own = path.parent.resolve() == (paths.ROOT / "steps").resolve()
    if not path.is_file():
        raise Problem(
            "missing",
            f"{path} does not exist." if not path.exists() else f"{path} is not a file.",
            f"Restore the skeleton with `git checkout -- {path}`."
            if own
            else "Check the path given to --file.",
        )
    source = path.read_bytes()
    if not source.strip():
        raise Problem(
            "missing",
            f"{path} is empty.",
            f"Restore the skeleton with `git checkout -- {path}` and start again."
            if own
            else "It should define the step's names, as the skeleton in steps/ does.",
        )
    try:
        code = compile(source, str(path), "exec")
    except ValueError as exc:  # e.g. a NUL byte: not Python source at all
        raise Problem("syntax", f"Python cannot read your file: {exc}", file=str(path)) from None
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
