"""`python -m checks watch`: check the step you are editing every time you save it.

At start it checks the first step that does not pass yet. Then it waits for a save under
``steps/`` and checks the step whose file changed (``steps/step_04.py`` → step 04), clearing
the screen first, until Ctrl-C. A check that answered from MAX's eager interpreter (the
module's graph was new) runs again by itself once the warm-up has compiled that graph, so
the learner sees the compiled check too without saving again. Each run is an ordinary supervised check (see
``checks.supervisor``), so an endless loop in the learner's code ends in a report and the
watch goes on.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from checks import paths, registry, supervisor

ROOT = paths.ROOT
STEP_FILE = re.compile(r"step_(\d\d)\.py")


def step_of(path: str | Path) -> int | None:
    """The step a file under steps/ belongs to, or None for any other file."""
    m = STEP_FILE.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def _only_step_files(_change, path: str) -> bool:
    return step_of(path) is not None


def pick(changes) -> int | None:
    """The step being edited: of the step files that changed, the one saved last."""
    known = set(registry.numbers())
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
    ran: str  # "compiled" | "eager"


def _run(command: str, numbers, args) -> list[Shown]:
    from checks import runner

    screen = runner.Screen(show="failed" if command == "next" else "all")
    outcome = runner.run_job(runner.job_for(args, command, numbers), args, screen)
    if outcome.stop is not None:
        runner.show_stop(outcome.stop, args)
        return [Shown(outcome.stop.number, False, "compiled")]
    if command == "next" and screen.reports and screen.reports[-1].passed:
        from checks.report import console

        console.print("[bold green]Every step passes.[/] Well done!")
    return [Shown(r.number, r.passed, r.ran) for r in screen.reports]


def _compiled_since(results: list[Shown]) -> int | None:
    """The step of the last check, if it ran eagerly and the warm-up has compiled it since."""
    from checks import warmup

    last = results[-1] if results else None
    if last is None or last.ran != "eager" or warmup.waiting(last.number):
        return None
    last.ran = "compiled"  # once
    return last.number


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
        later = [n for n in registry.numbers() if n > shown.number]
        if later:
            nxt = later[0]
            console.print(
                f"[green]Step {shown.number:02d} passes.[/] Next: step {nxt:02d}: read "
                f"{_rel(chapter_file(nxt))} and edit {_rel(steps_dir / f'step_{nxt:02d}.py')}."
            )
        else:
            console.print("[green]That was the last step.[/]")
    console.print(
        f"[dim]Watching {_rel(steps_dir)}/: save a step file to check it again. Ctrl-C to stop.[/]"
    )


def main(device: str = "auto", time_limit: float = supervisor.DEFAULT_TIME_LIMIT) -> int:
    from types import SimpleNamespace

    from watchfiles import watch

    from checks.report import _rel, console

    args = SimpleNamespace(device=device, time_limit=time_limit, file=None)
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
                results = _run("next", registry.numbers(), args)
                _footer(console, results, steps_dir)
            number = pick(changes)
            if number is None:
                number = _compiled_since(results)
                if number is None:
                    continue
                why = f"MAX has compiled your step {number:02d}: checking it compiled"
            else:
                why = f"{_rel(steps_dir / f'step_{number:02d}.py')} changed: checking step {number:02d}"
            _clear(console, why)
            results = _run("check", [number], args)
            _footer(console, results, steps_dir)
    except KeyboardInterrupt:
        console.print("\n[dim]Stopped watching.[/]")
        return 0
    return 0
