"""How a check's result looks on the learner's screen: short, friendly, exact."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent


def chapter_file(number: int) -> Path:
    return ROOT / "book" / "src" / f"step_{number:02d}.md"


def _tty() -> bool:
    import sys

    return sys.stdout.isatty()


console = Console(highlight=False, soft_wrap=False, width=None if _tty() else 120)

FIRST_RUN = (
    "Compiling with MAX. The first run compiles kernels (about a minute); later runs take seconds."
)


def _rel(path: Path | str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


@contextlib.contextmanager
def progress(label: str):
    """A spinner while a check runs; it says so when MAX compiles."""
    status = None

    def notify(stage: str) -> None:
        nonlocal status
        if stage != "compiling" or status is not None:
            return
        if console.is_terminal:
            status = console.status(f"{label}: {FIRST_RUN}", spinner="dots")
            status.start()
        else:
            console.print(f"[dim]{label}: {FIRST_RUN}[/]")
            status = False

    try:
        yield notify
    finally:
        if status:
            status.stop()


def show(report, printed: list[str] | None = None) -> None:
    """The learner's screen for one check. ``printed``: what the learner's code printed."""
    head = f"[bold]Step {report.number:02d} · {escape(report.title)}[/]"
    where = _rel(report.file)
    sub = f"[dim]{escape(where)}" + (f", {report.target}" if report.target else "") + "[/]"
    console.print(f"{head}  {sub}")
    problem = report.problem
    if printed is None and problem is not None:
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
    if report.passed:
        console.print(f"[bold green]PASSED[/] step {report.number:02d} in {report.seconds:.1f} s")
    else:
        failed = sum(not i.ok for i in report.items) + (problem is not None)
        console.print(
            f"[bold red]FAILED[/] step {report.number:02d}: {failed} problem"
            f"{'s' if failed != 1 else ''}. Fix it and run `pixi run s{report.number:02d}` again."
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


def show_progress(rows: list[tuple[int, str, str, str]]) -> None:
    """rows: (number, title, status, detail)."""
    table = Table(title="Your progress", title_justify="left", show_lines=False)
    table.add_column("step", justify="right")
    table.add_column("chapter")
    table.add_column("status")
    table.add_column("first problem / next")
    styles = {"passed": "green", "failed": "red", "not started": "yellow", "missing": "red"}
    next_up = None
    for number, title, status, detail in rows:
        if next_up is None and status != "passed":
            next_up = number
        table.add_row(
            f"{number:02d}",
            escape(title),
            f"[{styles.get(status, 'white')}]{status}[/]",
            escape(detail),
        )
    console.print(table)
    if next_up is None:
        console.print("[bold green]Every step passes.[/]")
    else:
        console.print(
            f"Next: read {escape(_rel(chapter_file(next_up)))} and run `pixi run s{next_up:02d}`."
        )
