"""How a check's result looks on the learner's screen: short, friendly, exact."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gpt2.course import chapter_file


def _tty() -> bool:
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
STARTING = "MAX's server is starting (the first time for a file, it compiles your model)"
KERNEL = "Mojo and MAX are preparing your kernel (compiled once for each version of your file)"
# What the status line says during a wait of each kind, and when the wait is over.
WAITS = {
    "compile": (COMPILING, "MAX compiled for"),
    "server": (STARTING, "the server started after"),
    "kernel": (KERNEL, "your kernel was ready after"),
}
SHOW_AFTER = 1.5  # seconds: a compile shorter than this (a file read back) is not shown


def _rel(path: Path | str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


class CompileStatus:
    """Tells the learner, live, while MAX compiles in a check's process: for how long so far.

    Called with ``True`` when a compile starts and ``False`` when it ends. On a terminal a
    spinner line counts the seconds; in a log, one line when a compile has lasted
    ``SHOW_AFTER`` seconds and one when it ends. It writes to stderr: the reports go to
    stdout, from the command's own process.
    """

    def __init__(self) -> None:
        self.label = "MAX"
        # The process's own stderr, not whatever the learner's code has it redirected to.
        self.console = Console(
            file=sys.__stderr__, highlight=False, soft_wrap=False, width=_width()
        )
        self._lock = threading.Lock()
        self._since: float | None = None
        self._what = "compile"
        self._shown = False
        self._status = None
        self._stop = threading.Event()
        threading.Thread(target=self._tick, name="compile-status", daemon=True).start()

    def __call__(self, on: bool, what: str = "compile") -> None:
        with self._lock:
            if on:
                self._since, self._shown, self._what = time.monotonic(), False, what
                return
            since, shown, self._since = self._since, self._shown, None
            if self._status is not None:
                self._status.stop()
                self._status = None
            if shown and since is not None:
                done = WAITS.get(self._what, WAITS["compile"])[1]
                self.console.print(
                    f"[dim]{self.label}: {done} {time.monotonic() - since:.0f} s.[/]"
                )

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                if self._since is None or time.monotonic() - self._since < SHOW_AFTER:
                    continue
                doing = WAITS.get(self._what, WAITS["compile"])[0]
                text = f"{self.label}: {doing}: {time.monotonic() - self._since:.0f} s so far"
                if self.console.is_terminal:
                    if self._status is None:
                        self._status = self.console.status(text, spinner="dots")
                        self._status.start()
                    else:
                        self._status.update(text)
                elif not self._shown:
                    self.console.print(f"[dim]{text}…[/]")
                self._shown = True

    def settle(self) -> None:
        """A check ended: a compile still shown is over."""
        if self._since is not None:
            self(False)

    def close(self) -> None:
        self._stop.set()
        self.settle()


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
            label = "MAX says: " if problem.origin == "max" else "message: "
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
    status: str  # one of gpt2.course.STATUSES
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
