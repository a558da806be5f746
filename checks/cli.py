"""`python -m checks NN | all | progress | next | watch | warm | new-step TITLE`: the course's command.

Exit status is 0 if and only if every requested check passed.

This process stays light: it never imports MAX. It turns the command line into a job, hands
the job to a worker process (``checks.supervisor``), shows what the worker finds as it comes
(``checks.report``) and remembers the learner's results (``checks.progress``). Data flows one
way: command line → job → worker → events → report.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from checks import paths, progress, registry, report
from checks.runner import Screen, job_for, run_job, show_stop
from checks.supervisor import DEFAULT_TIME_LIMIT

ROOT = paths.ROOT

USAGE = """python -m checks STEP [--file PATH] [--device cpu|gpu|auto] [--time-limit S] [--no-warmup]
       python -m checks STEP --hint [0]   (or: python -m checks hint STEP)
       python -m checks all | progress | next | watch | warm [--all]
       python -m checks new-step "Title" [--kind module|function] [--dry-run]"""

COMMANDS = ("all", "progress", "watch", "new-step", "next", "warm", "hint")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m checks",
        usage=USAGE,
        description="Check your GPT-2 steps against the reference, with numbers.",
    )
    parser.add_argument(
        "target",
        help="a step (6, 06, s06); 'all'; 'progress' (a table of every step); 'next' (the "
        "first step not passing yet); 'watch' (check each step file you save); 'warm' "
        "(compile what the checks need, now, with a progress bar); 'new-step'",
    )
    parser.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help="check this file as if it were the step")
    parser.add_argument(
        "--hint",
        nargs="?",
        const=-1,
        type=int,
        metavar="0",
        help="show the next hint for the step instead of checking it: the idea, then the ops, "
        "then the shape of the code (--hint 0: start its hints again)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=("cpu", "gpu", "auto"),
        help="where MAX runs the check (default: the GPU when MAX sees one, else the CPU)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        metavar="S",
        help="seconds your code may run at a stretch before the check stops it "
        f"(default {DEFAULT_TIME_LIMIT:g})",
    )
    parser.add_argument(
        "--kind",
        choices=("module", "function"),
        default="module",
        help="new-step: the step defines a MAX Module (default) or a function",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="new-step: list what would be written, write nothing"
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="do not start the background warm-up (also: GPT2_CHECKS_WARMUP=0); a module MAX "
        "has not compiled yet is then compiled before it is checked",
    )
    parser.add_argument("--background", action="store_true", help=argparse.SUPPRESS)  # warm
    parser.add_argument("--task", help=argparse.SUPPRESS)  # warm: one task, in this process
    parser.add_argument(
        "--all",
        dest="everything",
        action="store_true",
        help="warm: also every step's reference and known-mistake graphs (what checks "
        "compile with --no-warmup)",
    )
    return parser


def _error(message: str) -> int:
    from rich.markup import escape

    report.console.print(f"[red]✗[/] {escape(message)}")
    return 2


def main(argv: list[str] | None = None) -> int:
    sys.dont_write_bytecode = True  # never write next to the learner's files
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = _parser().parse_args(argv)

    if args.target == "new-step":
        from checks import scaffold

        return scaffold.main(" ".join(args.words), kind=args.kind, dry_run=args.dry_run)
    if args.target == "hint":  # `python -m checks hint 06` (pixi: `pixi run hint 06`)
        if len(args.words) != 1:
            return _error("Which step? python -m checks hint 06")
        args.target, args.words = args.words[0], []
        args.hint = -1 if args.hint is None else args.hint
    if args.words:
        return _error(f"Unexpected {' '.join(args.words)!r}. Usage: {USAGE.splitlines()[0]}")
    if args.target in ("all", "progress", "watch", "next", "warm") and args.file:
        return _error("--file checks one step: python -m checks 06 --file PATH")
    if args.time_limit <= 0:
        return _error("--time-limit must be a positive number of seconds")
    from checks import warmup

    if args.no_warmup:
        os.environ[warmup.DISABLE_ENV] = "0"  # the watch's checks inherit it
    if args.target == "warm":
        if args.task:
            return warmup.run_task(args.task, args.device)
        return warmup.main(
            background=args.background, device=args.device, everything=args.everything
        )
    if args.target not in COMMANDS:
        number = registry.parse_step(args.target)
        if number is None or number not in registry.numbers():
            known = ", ".join(f"{n:02d}" for n in registry.numbers())
            return _error(
                f"No step {args.target!r}. Steps: {known}; or 'all', 'progress', 'watch'."
            )
        args.number = number
    if args.hint is not None:
        if args.target in COMMANDS:
            return _error("--hint is for one step: python -m checks 06 --hint")
        return show_hint(args.number, args.hint)
    if args.target != "progress":  # the first check starts it; later ones find it running
        warmup.start_background()
    try:
        if args.target == "watch":
            from checks import watch

            return watch.main(device=args.device, time_limit=args.time_limit)
        if args.target == "all":
            return check_all(args)
        if args.target == "progress":
            return show_progress(args)
        if args.target == "next":
            return check_next(args)
        return check_one(args.number, args.file, args)
    except KeyboardInterrupt:
        report.console.print("\n[yellow]Stopped.[/]")
        return 130


def show_hint(number: int, level: int) -> int:
    """The next level of the step's hint ladder (``level`` 0: start it again)."""
    from rich.markup import escape

    from checks import hints

    step = f"{number:02d}"
    total = hints.count(number)
    if not total:
        return _error(f"Step {step} has no hints yet.")
    if level == 0:
        hints.reset(number)
        report.console.print(f"Hints for step {step} start again at 1 of {total}.")
        return 0
    taken = hints.take(number)
    if taken is None:  # all seen: the last one again
        taken = (total, registry_hints(number)[-1])
    shown, text = taken
    name = hints.LEVELS[min(shown - 1, len(hints.LEVELS) - 1)]
    report.console.print(f"[bold]Step {step} · hint {shown} of {total}[/] [dim]({name})[/]")
    report.console.print(f"  {escape(text)}")
    if shown < total:
        report.console.print(
            f"[dim]Still stuck? `{report.hint_command(step)}` again shows the next.[/]"
        )
    else:
        report.console.print(
            f"[dim]That was the last hint; `{report.hint_command(step)} 0` starts them again.[/]"
            if not report.under_pixi()
            else f"[dim]That was the last hint; `python -m checks {step} --hint 0` starts them again.[/]"
        )
    return 0


def registry_hints(number: int) -> tuple[str, ...]:
    from checks import manifest

    return manifest.step(number).hints


def check_one(number: int, file, args) -> int:
    screen = Screen()
    outcome = run_job(job_for(args, "check", [number]), args, screen)
    if outcome.stop is not None:
        show_stop(outcome.stop, args)
        return 1
    if not screen.reports:
        return _worker_failed(outcome)
    return 0 if screen.reports[-1].passed else 1


def check_all(args) -> int:
    """Every step; a step the parent had to stop counts as failed, and the rest go on."""
    remaining = registry.numbers()
    statuses: list[str] = []
    while remaining:
        screen = Screen()
        outcome = run_job(job_for(args, "check", remaining), args, screen)
        statuses += [r.status for r in screen.reports]
        if outcome.stop is None:
            if not screen.reports and outcome.code not in (0, 1):
                return _worker_failed(outcome)
            break
        show_stop(outcome.stop, args)
        if not outcome.stop.number:  # it died before any check: no use going on
            return 1
        statuses.append(progress.FAILED)
        remaining = [n for n in remaining if n > outcome.stop.number]
    passed = statuses.count(progress.PASSED)
    report.console.print(f"\n{passed} passed, {len(statuses) - passed} failed")
    return 0 if statuses and passed == len(statuses) else 1


def check_next(args) -> int:
    """Check the steps in order, skipping the passed ones; show the first that does not pass."""
    screen = Screen(show="failed")
    outcome = run_job(job_for(args, "next", registry.numbers()), args, screen)
    if outcome.stop is not None:
        show_stop(outcome.stop, args)
        return 1
    if not screen.reports and not screen.reused:
        return _worker_failed(outcome)
    if screen.reports and not screen.reports[-1].passed:
        return 1
    report.console.print("[bold green]Every step passes.[/] Well done!")
    return 0


def show_progress(args) -> int:
    """A table of every step. Unchanged files reuse their last result instead of re-checking."""
    rechecked: list[int] = []
    for _attempt in range(len(registry.numbers()) + 1):
        screen = Screen(show="none")
        outcome = run_job(job_for(args, "progress", registry.numbers()), args, screen)
        rechecked += [r.number for r in screen.reports]
        if outcome.stop is None:
            if not screen.reports and not screen.reused:
                return _worker_failed(outcome)
            break
        show_stop(outcome.stop, args, quiet=True)  # remembered as failing: not checked again
        rechecked.append(outcome.stop.number)
        if not outcome.stop.number:
            return 1
    device = outcome.device or "cpu"
    rows = []
    for number in registry.numbers():
        title = registry.spec(number).title
        path = paths.step_file(number)
        stored = progress.fresh(number, device)
        if not path.exists():
            rows.append(
                report.ProgressRow(
                    number, title, progress.MISSING, f"{os.path.relpath(path)} does not exist"
                )
            )
        elif stored is None:
            rows.append(report.ProgressRow(number, title, progress.FAILED, "not checked"))
        else:
            detail = stored.detail if stored.status != progress.PASSED else ""
            rows.append(report.ProgressRow(number, title, stored.status, detail))
    report.show_progress(rows)
    listed = ", ".join(f"{n:02d}" for n in sorted(set(rechecked))) or "none"
    reused = len(registry.numbers()) - len(set(rechecked))
    report.console.print(
        f"[dim]Checked now: {listed}. Unchanged since their last check: {reused}.[/]"
    )
    from checks import warmup

    report.console.print(f"[dim]{warmup.status().line()}[/]")
    return 0 if all(r.status == progress.PASSED for r in rows) else 1


def _worker_failed(outcome) -> int:
    """The worker ended without a report and without being stopped: it could not start."""
    return outcome.code if outcome.code not in (0, 1) else 1
