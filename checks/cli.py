"""`python -m checks NN | all | next | progress | watch | warm | hint | new-step | sync`.

Exit status is 0 if and only if every requested check passed (2: a command line that makes
no sense). This process never imports MAX: the checks run in a child (``checks.run``), and
what they find is shown here (``checks.report``).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from checks import report, run, warmup
from gpt2 import course

USAGE = """python -m checks STEP [--file PATH] [--device cpu|gpu|auto] [--time-limit S] [--no-warmup]
       python -m checks STEP --hint [0]   (or: python -m checks hint STEP)
       python -m checks all | next | progress | watch | warm
       python -m checks new-step "Title" [--kind module|function] [--dry-run]
       python -m checks sync   (rewrite what course.toml decides: pixi tasks, SUMMARY, README, contract)"""

COMMANDS = ("all", "progress", "watch", "new-step", "next", "warm", "hint", "sync")


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
        "(compile what the checks need, now, with a progress bar); 'new-step'; 'sync'",
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
        default=run.DEFAULT_TIME_LIMIT,
        metavar="S",
        help="seconds your code may run at a stretch before the check stops it (MAX's "
        f"compiles do not count; default {run.DEFAULT_TIME_LIMIT:g})",
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
        help="do not start the background warm-up (also: GPT2_CHECKS_WARMUP=0)",
    )
    parser.add_argument("--background", action="store_true", help=argparse.SUPPRESS)  # warm
    parser.add_argument("--task", help=argparse.SUPPRESS)  # warm: one task, in this process
    return parser


def parse_step(text: str) -> int | None:
    """'6', '06', 's06', 'step_06' -> 6; anything else -> None."""
    m = re.fullmatch(r"(?:s|step_?)?(\d{1,2})", text.strip().lower())
    return int(m.group(1)) if m else None


def _error(message: str) -> int:
    from rich.markup import escape

    report.console.print(f"[red]✗[/] {escape(message)}")
    return 2


def main(argv: list[str] | None = None) -> int:
    sys.dont_write_bytecode = True  # never write next to the learner's files
    if str(course.ROOT) not in sys.path:
        sys.path.insert(0, str(course.ROOT))
    args = _parser().parse_args(argv)
    if args.target == "new-step":
        from checks import scaffold

        return scaffold.main(" ".join(args.words), kind=args.kind, dry_run=args.dry_run)
    if args.target == "sync":
        from checks import derived

        return derived.main()
    if args.target == "hint":  # `python -m checks hint 06` (pixi: `pixi run hint 06`)
        if len(args.words) != 1:
            return _error("Which step? python -m checks hint 06")
        args.target, args.words = args.words[0], []
        args.hint = -1 if args.hint is None else args.hint
    if args.words:
        return _error(f"Unexpected {' '.join(args.words)!r}. Usage: {USAGE.splitlines()[0]}")
    if args.target in COMMANDS and args.file:
        return _error("--file checks one step: python -m checks 06 --file PATH")
    if args.time_limit <= 0:
        return _error("--time-limit must be a positive number of seconds")
    if args.no_warmup:
        os.environ[warmup.DISABLE_ENV] = "0"  # the watch's checks inherit it
    if args.target == "warm":
        if args.task:  # one task, in a process of its own
            warmup.run_task(args.task, args.device)
            # Done: end here. Python's exit would tear MAX down, which can abort (SIGABRT,
            # "terminate called without an active exception") after the work is done.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        return warmup.main(background=args.background, device=args.device)
    number = None
    if args.target not in COMMANDS:
        number = parse_step(args.target)
        if number not in course.numbers():
            known = ", ".join(f"{n:02d}" for n in course.numbers())
            return _error(
                f"No step {args.target!r}. Steps: {known}; or 'all', 'progress', 'watch'."
            )
    if args.hint is not None:
        if number is None:
            return _error("--hint is for one step: python -m checks 06 --hint")
        return show_hint(number, args.hint)
    if args.target != "progress":  # the first check starts it; later ones find it running
        warmup.start_background(args.device)
    options = dict(device=args.device, time_limit=args.time_limit)
    try:
        if args.target == "watch":
            from checks import watch

            return watch.main(**options)
        if args.target == "all":
            return check_all(options)
        if args.target == "progress":
            return show_progress(options)
        if args.target == "next":
            return check_next(options)
        file = str(args.file.resolve()) if args.file else None
        reports = run.checks([number], file=file, on_report=report.show, **options)
        return 0 if reports and reports[-1].passed else 1
    except run.ChildFailed as failed:
        return _error(str(failed))
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
    shown, text = hints.take(number) or (total, course.step(number).hints[-1])
    name = hints.LEVELS[min(shown - 1, len(hints.LEVELS) - 1)]
    report.console.print(f"[bold]Step {step} · hint {shown} of {total}[/] [dim]({name})[/]")
    report.console.print(f"  {escape(text)}")
    if shown < total:
        report.console.print(
            f"[dim]Still stuck? `{report.hint_command(step)}` again shows the next.[/]"
        )
    else:
        again = (
            f"python -m checks {step} --hint 0"
            if report.under_pixi()
            else f"{report.hint_command(step)} 0"
        )
        report.console.print(f"[dim]That was the last hint; `{again}` starts them again.[/]")
    return 0


def check_all(options: dict) -> int:
    reports = run.checks(course.numbers(), on_report=report.show, **options)
    passed = sum(r.passed for r in reports)
    report.console.print(f"\n{passed} passed, {len(reports) - passed} failed")
    return 0 if reports and passed == len(reports) else 1


def _unsettled(device: str) -> list[int]:
    """The steps whose stored result does not hold for their files as they are now."""
    name = "gpu" if device == "gpu" else "cpu"
    return [n for n in course.numbers() if course.fresh_result(n, name) is None]


def first_failing(options: dict):
    """The report of the first step that does not pass (None: all do), checking the steps in
    order; a step that passed and has not changed since is not checked again."""
    device = "gpu" if options["device"] == "gpu" else "cpu"
    for number in course.numbers():
        stored = course.fresh_result(number, device)
        if stored is not None and stored.status == course.PASSED:
            continue
        reports = run.checks([number], **options)
        if reports and not reports[-1].passed:
            return reports[-1]
    return None


def check_next(options: dict) -> int:
    """The first step that does not pass, checked and shown."""
    found = first_failing(options)
    if found is None:
        report.console.print("[bold green]Every step passes.[/] Well done!")
        return 0
    report.show(found)
    return 1


def show_progress(options: dict) -> int:
    """A table of every step; unchanged files reuse their last result instead of re-checking."""
    todo = [n for n in _unsettled(options["device"]) if course.step_file(n).exists()]
    reports = run.checks(todo, **options) if todo else []
    device = reports[0].target.split(",")[0] if reports and reports[0].target else "cpu"
    rows = []
    for number in course.numbers():
        title, path = course.step(number).title, course.step_file(number)
        stored = course.fresh_result(number, device)
        if not path.exists():
            status, detail = course.MISSING, f"{os.path.relpath(path)} does not exist"
        elif stored is None:
            status, detail = course.FAILED, "not checked"
        else:
            status = stored.status
            detail = stored.detail if stored.status != course.PASSED else ""
        rows.append(report.ProgressRow(number, title, status, detail))
    report.show_progress(rows)
    listed = ", ".join(f"{r.number:02d}" for r in reports) or "none"
    reused = len(course.numbers()) - len(reports)
    report.console.print(
        f"[dim]Checked now: {listed}. Unchanged since their last check: {reused}.[/]"
    )
    report.console.print(f"[dim]{warmup.status(device).line()}[/]")
    return 0 if all(r.status == course.PASSED for r in rows) else 1
