"""`python -m checks watch`: check the step you are editing every time you save it.

At start it checks the first step that does not pass yet. Then it waits for a save under
``steps/`` and checks the step whose file changed (``steps/step_04.py`` → step 04), clearing
the screen first, until Ctrl-C. Each run is an ordinary check in
a child process (``checks.run``), so an endless loop in the learner's code ends in a report
and the watch goes on.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from checks import run
from gpt2 import course

ROOT = course.ROOT
STEP_FILE = re.compile(r"step_(\d\d)\.(?:py|mojo)")


def step_of(path: str | Path) -> int | None:
    """The step a file under steps/ belongs to, or None for any other file."""
    m = STEP_FILE.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def _only_step_files(_change, path: str) -> bool:
    return step_of(path) is not None


def pick(changes) -> int | None:
    """The step being edited: of the step files that changed, the one saved last."""
    known = set(course.numbers())
    found: dict[int, float] = {}
    for _change, path in changes:
        number = step_of(path)
        if number is None or number not in known:
            continue
        try:
            found[number] = max(found.get(number, 0.0), os.stat(path).st_mtime)
        except OSError:  # deleted (or mid-rename): still the file being edited
            found.setdefault(number, 0.0)
    if not found:
        return None
    return max(found, key=lambda n: (found[n], n))


@dataclass
class Shown:
    """What the last check of the watch showed (enough for the footer and the re-check)."""

    number: int
    passed: bool


def _run(step: int | None, options: dict) -> list[Shown]:
    """Check ``step``, or (None) the first step that does not pass; show it."""
    from checks import cli, report

    if step is None:
        found = cli.first_failing(options)
        if found is None:
            report.console.print("[bold green]Every step passes.[/] Well done!")
            return [Shown(course.numbers()[-1], True)]
        report.show(found)
        return [Shown(found.number, False)]
    reports = run.checks([step], on_report=report.show, **options)
    return [Shown(r.number, r.passed) for r in reports]


def _clear(console, why: str) -> None:
    if console.is_terminal:
        console.clear()
    else:  # a log, not a screen: mark where each run starts instead
        console.rule(style="dim")
    console.print(f"[dim]{why} · {time.strftime('%H:%M:%S')}[/]")


def _footer(console, results: list[Shown], steps_dir: Path) -> None:
    from checks.report import _rel, chapter_file

    shown = results[-1] if results else None
    if shown is not None and shown.passed:
        later = [n for n in course.numbers() if n > shown.number]
        if later:
            nxt = later[0]
            console.print(
                f"[green]Step {shown.number:02d} passes.[/] Next: step {nxt:02d}: read "
                f"{_rel(chapter_file(nxt))} and edit {_rel(course.step_file(nxt))}."
            )
        else:
            console.print("[green]That was the last step.[/]")
    console.print(
        f"[dim]Watching {_rel(steps_dir)}/: save a step file to check it again. Ctrl-C to stop.[/]"
    )


def main(device: str = "auto", time_limit: float = run.DEFAULT_TIME_LIMIT) -> int:
    from watchfiles import watch

    from checks.report import _rel, console

    options = dict(device=device, time_limit=time_limit)
    steps_dir = ROOT / "steps"
    started = False
    try:
        # The watcher is live from the first (empty) yield on, so a save made while the
        # first check runs is not missed.
        for changes in watch(
            steps_dir,
            watch_filter=_only_step_files,
            debounce=400,
            rust_timeout=500,
            yield_on_timeout=True,
            raise_interrupt=True,
        ):
            if not started:
                started = True
                _clear(console, "Checking the first step that does not pass yet")
                results = _run(None, options)
                _footer(console, results, steps_dir)
            number = pick(changes)
            if number is None:
                continue
            why = f"{_rel(course.step_file(number))} changed: checking step {number:02d}"
            _clear(console, why)
            results = _run(number, options)
            _footer(console, results, steps_dir)
    except KeyboardInterrupt:
        console.print("\n[dim]Stopped watching.[/]")
        return 0
    return 0
