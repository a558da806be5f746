"""Run the learner's code without letting it take the checker down.

Whatever the learner's file does (raise, print a lot, call ``sys.exit``, loop forever), it
reaches the checker as a ``Problem``: one short, exact account pointing at the learner's own
file and line. MAX's internal frames never reach the screen.

Every stretch of learner code runs inside ``guarded``, which ``CLOCK`` holds to the time
limit. The clock stands still while MAX compiles (``gpt2.max_internals.announce_compiles``
tells it): MAX's compile time is never the learner's. When a stretch runs past the limit,
the watchdog thread reports where the learner's code was (``Timeout``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import linecache
import re
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from checks.explain import explain
from gpt2 import course

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
    origin: str = ""  # for kind "error": "max" when MAX raised it, else "python"

    def __str__(self) -> str:  # pragma: no cover - for debugging only
        return f"{self.kind}: {self.title}"


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

    While it runs, ``CLOCK`` holds it to the time limit; the compiles MAX does meanwhile do
    not count (``gpt2.max_internals.announce_compiles`` tells the clock).
    """
    out = io.StringIO()
    CLOCK.enter(doing)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield
    except Problem:  # a nested stretch's, already told
        raise
    except SystemExit as exc:
        raise Problem(
            "exit",
            f"Your code called sys.exit({exc.code!r}) while {doing}.",
            "A step file should define things, not end the program; remove the exit call.",
            **_locate(exc, path),
        ) from None
    except NotImplementedError as exc:
        where = _locate(exc, path)
        if where.get("file"):
            raise Problem(
                "not-started",
                f"{exc} is still a TODO" if str(exc) else "a TODO is left",
                **where,
            ) from None
        raise _as_problem(exc, path, doing) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - the learner's code may raise anything
        raise _as_problem(exc, path, doing) from None
    finally:
        CLOCK.leave()
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


def _as_problem(exc: BaseException, path: Path, doing: str) -> Problem:
    message = _first_lines(exc)
    where = _locate(exc, path)
    title = f"{type(exc).__name__} while {doing}"
    return Problem(
        "error",
        title,
        message,
        meaning=explain(f"{type(exc).__name__}: {exc}"),
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


def _source(path: Path) -> bytes:
    """The learner's file, which must exist and hold something."""
    own = path.parent.resolve() == (course.ROOT / "steps").resolve()
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
    return source


def load(path: Path, module_name: str, text: str | None = None) -> types.ModuleType:
    """Import the learner's file (or ``text`` in its place) as a fresh module, never writing
    anything next to it."""
    source = _source(path) if text is None else text
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


_TODO_LINE = re.compile(rb"^\s*\S.*#\s*TODO\b", re.MULTILINE)  # code still marked TODO
_MOJO_ERROR = re.compile(r":(\d+):(\d+): error: (.*)")


def load_kernel(path: Path, names: tuple[str, ...]) -> types.SimpleNamespace:
    """A kernel step's Mojo file compiled, its ops as functions of tensors (``gpt2.kernels``).

    A line of code still marked ``# TODO`` means the step is not started (nothing compiles).
    Compiling is Mojo's and MAX's time, not the learner's: the clock stands still, and an
    unchanged file is not compiled again."""
    source = _source(path)
    todo = _TODO_LINE.search(source)
    if todo:
        line = source[: todo.start()].count(b"\n") + 1
        functions = re.findall(rb"^\s*def (\w+)", source[: todo.start()], re.MULTILINE)
        name = functions[-1].decode() if functions else "a part of your kernel"
        raise Problem(
            "not-started",
            f"{name} is still a TODO",
            file=str(path),
            line=line,
            source=source.splitlines()[line - 1].decode(errors="replace"),
        )
    from gpt2 import kernels, max_internals

    ops = {}
    try:
        with max_internals.Compiling("kernel"):
            for name in names:
                ops[name] = kernels.op(name, path)
    except kernels.KernelCompileError as exc:
        first = _MOJO_ERROR.search(exc.message)
        lines = exc.message.splitlines()
        raise Problem(
            "syntax",
            f"Mojo cannot compile your file: {first.group(3) if first else lines[0]}",
            "\n".join(lines[:MAX_PRINTED_LINES]),
            file=str(path),
            line=int(first.group(1)) if first else None,
        ) from None
    return types.SimpleNamespace(**ops)


def require(module: types.ModuleType, names: tuple[str, ...], path: Path) -> None:
    missing = [n for n in names if not hasattr(module, n)]
    if missing:
        raise Problem(
            "missing",
            f"{path} does not define {', '.join(missing)}.",
            "The check looks these names up in your file; keep the names the skeleton gives.",
        )


# --------------------------------------------------------------------------- the time limit


class Clock:
    """Time the learner's code has run, not counting the compiles MAX does meanwhile.

    ``stretches`` are the stretches of learner code in progress (innermost last), each with
    the learner time at which it began. A watchdog thread (``watch``) calls ``on_timeout``
    once a stretch has run past the limit.
    """

    def __init__(self) -> None:
        self.stretches: list[tuple[str, float]] = []
        self.compiling = False
        self._since = 0.0  # when the current compile began
        self._compiled = 0.0  # seconds spent in finished compiles
        self._lock = threading.Lock()
        # Told each time a stretch begins (what it does) or ends (the enclosing one, or None).
        self.on_change: Callable[[str | None], None] = lambda doing: None

    def now(self) -> float:
        wall = time.monotonic()
        return wall - self._compiled - (wall - self._since if self.compiling else 0.0)

    def enter(self, doing: str) -> None:
        with self._lock:
            self.stretches.append((doing, self.now()))
        self.on_change(doing)

    def leave(self) -> None:
        with self._lock:
            if self.stretches:
                self.stretches.pop()
            doing = self.stretches[-1][0] if self.stretches else None
        self.on_change(doing)

    def compile(self, on: bool, what: str = "compile") -> None:
        """MAX starts (``on``) or ends a compile: the clock stops or goes on."""
        with self._lock:
            if on and not self.compiling:
                self.compiling, self._since = True, time.monotonic()
            elif not on and self.compiling:
                self.compiling = False
                self._compiled += time.monotonic() - self._since

    def overdue(self, limit: float) -> str | None:
        """What the learner's code was doing, if its current stretch ran past ``limit``."""
        with self._lock:
            if self.compiling or not self.stretches:
                return None
            doing, began = self.stretches[-1]
            return doing if self.now() - began > limit else None

    def watch(self, limit: float, on_timeout: Callable[[str], None]) -> None:
        """Start the watchdog: ``on_timeout(doing)`` once a stretch runs past ``limit``."""

        def loop() -> None:
            while True:
                time.sleep(0.1)
                doing = self.overdue(limit)
                if doing is not None:
                    on_timeout(doing)
                    return

        threading.Thread(target=loop, name="time-limit", daemon=True).start()


CLOCK = Clock()


def main_thread_line(path: Path) -> dict:
    """Where the learner's code is now in ``path``: file, line and source, or {}. The main
    thread first; MAX may be running the learner's code in a thread of its own."""
    frames = sys._current_frames()
    main = threading.main_thread().ident
    target = str(Path(path).resolve())
    for ident in sorted(frames, key=lambda ident: ident != main):
        frame = frames[ident]
        while frame is not None:
            if str(Path(frame.f_code.co_filename).resolve()) == target:
                line = frame.f_lineno
                source = linecache.getline(frame.f_code.co_filename, line).rstrip()
                return {"file": str(path), "line": line, "source": source}
            frame = frame.f_back
    return {}
