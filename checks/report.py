"""How a check's result looks on the learner's screen: short, friendly, exact."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from checks.paths import chapter_file


def _tty() -> bool:
    import sys

    return sys.stdout.isatty()


def _width() -> int | None:
    """A terminal's own width; in a log, COLUMNS if set, else 120."""
    if _tty():
        return None
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return 120


console = Console(highlight=False, soft_wrap=False, width=_width())

COMPILING = "MAX is compiling kernels for this step, first time only"
WAITING = "waiting for the warm-up, which is compiling this right now"
STARTING = "MAX's server is starting (the first time for a file, it compiles your model)"
EAGER_NOTE = (
    "Your module ran on MAX's eager interpreter, which answers at once. MAX's graph compiler "
    "is compiling it in the background (a minute or two, for this version of your file "
    "only); the next check runs it compiled."
)
SHOW_AFTER = 1.5  # seconds: a compile shorter than this (a file read back) is not shown


def _rel(path: Path | str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


class CompileStatus:
    """Tells the learner, live, while MAX compiles: what, and for how long so far.

    On a terminal a spinner line counts the seconds; in a log, one line when a compile has
    lasted ``SHOW_AFTER`` seconds and one when it ends.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._lock = threading.Lock()
        self._since: float | None = None
        self._what = "compile"
        self._shown = False
        self._status = None
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="compile-status", daemon=True)
        self._ticker.start()

    def __call__(self, on: bool, what: str) -> None:
        with self._lock:
            if on:
                self._since, self._what, self._shown = time.monotonic(), what, False
                return
            since, shown = self._since, self._shown
            self._since = None
            if self._status is not None:
                self._status.stop()
                self._status = None
            elif shown and since is not None:
                done = "the server started after" if self._what == "server" else "MAX compiled for"
                console.print(f"[dim]{self.label}: {done} {time.monotonic() - since:.0f} s.[/]")

    def _text(self, seconds: float) -> str:
        doing = {"wait": WAITING, "server": STARTING}.get(self._what, COMPILING)
        return f"{self.label}: {doing}: {seconds:.0f} s so far"

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                if self._since is None:
                    continue
                seconds = time.monotonic() - self._since
                if seconds < SHOW_AFTER:
                    continue
                if console.is_terminal:
                    if self._status is None:
                        self._status = console.status(self._text(seconds), spinner="dots")
                        self._status.start()
                    else:
                        self._status.update(self._text(seconds))
                elif not self._shown:
                    console.print(f"[dim]{self._text(seconds)}…[/]")
                self._shown = True

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._status is not None:
                self._status.stop()
                self._status = None


def under_pixi() -> bool:
    """Whether the learner runs the course through pixi (``pixi run`` sets these)."""
    return bool(os.environ.get("PIXI_PROJECT_ROOT") or os.environ.get("PIXI_ENVIRONMENT_NAME"))


def command(step: str, *options: str) -> str:
    """The command that checks ``step`` ("06") again, on the learner's own path."""
    base = f"pixi run s{step}" if under_pixi() else f"python -m checks {step}"
    return " ".join((base, *options))


def hint_command(step: str) -> str:
    return f"pixi run hint {step}" if under_pixi() else f"python -m checks {step} --hint"


def show(report) -> None:
    """The learner's screen for one check (an ``engine.Report``)."""
    printed = report.printed
    head = f"[bold]Step {report.number:02d} · {escape(report.title)}[/]"
    where = _rel(report.file)
    sub = f"[dim]{escape(where)}" + (f", {report.target}" if report.target else "") + "[/]"
    console.print(f"{head}  {sub}")
    problem = report.problem
    if not printed and problem is not None:
        printed = problem.printed
    if problem is not None and problem.kind == "not-started":
        _not_started(report)
        _printed(printed)
        return
    for item in report.items:
        mark = "[green]✓[/]" if item.ok else "[red]✗[/]"
        detail = f"  [dim]{escape(item.detail)}[/]" if item.detail else ""
        console.print(f"  {mark} {escape(item.label)}{detail}")
    if problem is not None:
        _problem(problem)
    _printed(printed)
    for hint in report.hints:
        console.print(f"  [yellow]hint[/] {escape(hint)}")
    if getattr(report, "ran", "compiled") == "eager":
        console.print(f"  [dim]{EAGER_NOTE}[/]")
    if report.passed:
        console.print(f"[bold green]PASSED[/] step {report.number:02d} in {report.seconds:.1f} s")
    else:
        failed = sum(not i.ok for i in report.items) + (problem is not None)
        console.print(
            f"[bold red]FAILED[/] step {report.number:02d}: {failed} problem"
            f"{'s' if failed != 1 else ''}. Fix it and run `{command(f'{report.number:02d}')}` again."
        )
        _hint_ladder(report.number)


def _hint_ladder(number: int) -> None:
    """Say that hints exist, and which level comes next."""
    from checks import hints

    try:
        seen, total = hints.seen(number), hints.count(number)
    except KeyError:  # a step the manifest does not know (a copy of the course, say)
        return
    if not total:
        return
    step = f"{number:02d}"
    if seen < total:
        console.print(
            f"[dim]Stuck? `{hint_command(step)}` shows hint {seen + 1} of {total} "
            f"({hints.LEVELS[min(seen, len(hints.LEVELS) - 1)]}).[/]"
        )
    else:
        console.print(
            f"[dim]You have seen all {total} hints; `{hint_command(step)}` shows the last "
            "one again, and the chapter's solution is folded away at its end.[/]"
        )


def _not_started(report) -> None:
    problem = report.problem
    where = f"{_rel(problem.file)}:{problem.line}" if problem.file else _rel(report.file)
    console.print(f"  [yellow]•[/] Not started yet: {escape(problem.title)}  [dim]({where})[/]")
    console.print(
        f"    Fill in the TODOs in {escape(_rel(report.file))}; the chapter "
        f"{escape(_rel(chapter_file(report.number)))} walks you through it."
    )
    console.print(f"[bold yellow]NOT STARTED[/] step {report.number:02d}")


def _problem(problem) -> None:
    console.print(f"  [red]✗[/] {escape(problem.title)}")
    if problem.file:
        console.print(f"    at [bold]{escape(_rel(problem.file))}:{problem.line}[/]")
        if problem.source is not None:
            console.print(f"      {escape(problem.source.strip())}")
            if problem.caret:
                indent = len(problem.source) - len(problem.source.lstrip())
                console.print("      " + " " * max(problem.caret - 1 - indent, 0) + "^")
    if problem.detail:
        label = ""
        if problem.kind == "error":
            label = "MAX says: " if getattr(problem, "origin", "") == "max" else "message: "
        for n, line in enumerate(problem.detail.splitlines()):
            lead = label if n == 0 else " " * len(label)
            console.print(f"    {lead}{escape(line)}")
    if problem.meaning:
        console.print(f"    [yellow]usually means[/] {escape(problem.meaning)}")


def _printed(lines: list[str] | None) -> None:
    if not lines:
        return
    console.print("  your code printed:")
    for line in lines:
        console.print(f"    [dim]{escape(line)}[/]")


@dataclass(frozen=True)
class ProgressRow:
    number: int
    title: str
    status: str  # one of checks.progress.STATUSES
    detail: str


def show_progress(rows: list[ProgressRow]) -> None:
    table = Table(title="Your progress", title_justify="left", show_lines=False)
    table.add_column("step", justify="right")
    table.add_column("chapter")
    table.add_column("status")
    table.add_column("first problem / next")
    styles = {"passed": "green", "failed": "red", "not started": "yellow", "missing": "red"}
    next_up = None
    for row in rows:
        if next_up is None and row.status != "passed":
            next_up = row.number
        table.add_row(
            f"{row.number:02d}",
            escape(row.title),
            f"[{styles.get(row.status, 'white')}]{row.status}[/]",
            escape(row.detail),
        )
    console.print(table)
    if next_up is None:
        console.print("[bold green]Every step passes.[/]")
    else:
        console.print(
            f"Next: read {escape(_rel(chapter_file(next_up)))} and run "
            f"`{command(f'{next_up:02d}')}`."
        )


def stop_problem(stop, limit_hint: str):
    """The Problem to show for a check the parent had to end (a ``supervisor.Stop``)."""
    from checks.learner import Problem
    from checks.supervisor import learner_frame

    where = {}
    frame = learner_frame(stop.stack, stop.file)
    if frame is not None:
        import linecache

        line, _func = frame
        where = {
            "file": stop.file,
            "line": line,
            "source": linecache.getline(stop.file, line).rstrip(),
        }
    if stop.kind == "compile-timeout":
        return Problem(
            "timeout",
            f"MAX's compiler worked for {stop.limit / 60:g} minutes without finishing"
            + (f" while {stop.doing}." if stop.doing else "."),
            "That is MAX, not your code: your code does not run while MAX compiles, and that "
            "time never counts against it. Run the check again; if it happens again, please "
            "report it with the output of the same command.",
        )
    if stop.kind == "timeout":
        return Problem(
            "timeout",
            f"Your code did not finish within {stop.limit:g} s while {stop.doing}.",
            "The check stopped it. Is there a loop that never ends, or a wait for something?\n"
            + ("It was at the line shown above. " if where else "")
            + f"If your code is only slow, allow more time: {limit_hint}",
            **where,
        )
    how = f"signal {stop.signal}" if stop.signal else f"exit status {stop.returncode}"
    if not stop.number:
        return Problem(
            "crash",
            f"The checker stopped ({how}) before any check began.",
            'Is MAX installed in this environment? Try `python -c "import max.driver"`; '
            "if that works, this is a bug in the checker: please report it.",
        )
    if stop.doing:
        return Problem(
            "crash",
            f"The check's process ended ({how}) while {stop.doing}.",
            "Your code ended Python (os._exit? os.kill?) or made MAX crash. A step file should "
            "only define things" + ("; look at what the line above calls." if where else "."),
            **where,
        )
    return Problem(
        "crash",
        f"The checker itself crashed ({how}) while checking step {stop.number:02d}.",
        "That is a bug in the checker or in MAX, not in your code. Please report it, with the "
        "output of the same command.",
    )
