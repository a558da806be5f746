"""`python -m checks NN | all | progress | watch | new-step TITLE` — the course's one command.

Exit status is 0 if and only if every requested check passed.

This process stays light: it never imports MAX. Each check runs in a child process (the same
command, see ``checks.supervisor``) that holds the learner's code to a time limit, so an
endless loop or a crash inside MAX ends in one clear report instead of a frozen terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from checks import registry, supervisor

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("GPT2_CHECKS_CACHE", ROOT / ".cache" / "checks"))
DEBUG_ENV = "GPT2_CHECKS_DEBUG"  # "1": show the checker's own tracebacks

USAGE = """python -m checks STEP [--file PATH] [--device cpu|gpu|auto] [--time-limit S] [--no-warmup]
       python -m checks all | progress | next | watch | warm
       python -m checks new-step "Title" [--kind module|function] [--dry-run]"""

COMMANDS = ("all", "progress", "watch", "new-step", "next", "warm")
EAGER_FIRST_ENV = "GPT2_CHECKS_EAGER_FIRST"  # "1"/"0": run a new module eagerly first, or not


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
        "--device",
        default="auto",
        choices=("cpu", "gpu", "auto"),
        help="where MAX runs the check (default: the GPU when MAX sees one, else the CPU)",
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=supervisor.DEFAULT_TIME_LIMIT,
        metavar="S",
        help="seconds your code may run at a stretch before the check stops it "
        f"(default {supervisor.DEFAULT_TIME_LIMIT:g})",
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
    parser.add_argument("--only", help=argparse.SUPPRESS)  # all: these steps (used internally)
    return parser


def _console():
    from checks.report import console

    return console


def _error(message: str) -> int:
    from rich.markup import escape

    _console().print(f"[red]✗[/] {escape(message)}")
    return 2


def main(argv: list[str] | None = None) -> int:
    sys.dont_write_bytecode = True  # never write next to the learner's files
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    args = _parser().parse_args(argv)

    if args.target == "new-step":
        from checks import scaffold

        return scaffold.main(" ".join(args.words), kind=args.kind, dry_run=args.dry_run)
    if args.words:
        return _error(f"Unexpected {' '.join(args.words)!r}. Usage: {USAGE.splitlines()[0]}")
    if args.target in ("all", "progress", "watch", "next", "warm") and args.file:
        return _error("--file checks one step: python -m checks 06 --file PATH")
    if args.time_limit <= 0:
        return _error("--time-limit must be a positive number of seconds")
    from checks import warmup

    if args.no_warmup:
        os.environ[warmup.DISABLE_ENV] = "0"  # the child and the watch's checks inherit it
    if args.target == "warm":
        if args.task:
            return warmup.run_task(args.task, args.device)
        return warmup.main(
            background=args.background, device=args.device, everything=args.everything
        )
    if args.target == "watch":
        from checks import watch

        warmup.start_background()
        return watch.main(device=args.device, time_limit=args.time_limit)
    if args.target not in COMMANDS:
        number = registry.parse_step(args.target)
        if number is None or number not in registry.numbers():
            known = ", ".join(f"{n:02d}" for n in registry.numbers())
            return _error(
                f"No step {args.target!r}. Steps: {known}; or 'all', 'progress', 'watch'."
            )
        args.number = number

    if supervisor.in_child():
        supervisor.start_child()
        from checks import runtime

        runtime.on_compile(lambda on, _what: supervisor.send("compile", on=on))
        code = _run_guarded(args)
        supervisor.send("finish", code=code)
        return code
    if args.target != "progress":  # the first check starts it; later ones find it running
        warmup.start_background()
    if os.environ.get(supervisor.IN_PROCESS_ENV) == "1":
        return _run_guarded(args)
    try:
        return supervised(args)
    except KeyboardInterrupt:
        _console().print("\n[yellow]Stopped.[/]")
        return 130


# --------------------------------------------------------------------------- the parent


def _child_argv(args, target: str) -> list[str]:
    argv = [target, "--device", args.device]
    if getattr(args, "file", None) is not None:
        argv += ["--file", str(args.file)]
    return argv


def supervised(args) -> int:
    """Run the command in child processes, stopping any whose learner code runs too long."""
    limit = args.time_limit
    if args.target == "all":
        remaining = registry.numbers()
        results: list[dict] = []
        while remaining:
            argv = _child_argv(args, "all") + ["--only", ",".join(str(n) for n in remaining)]
            outcome = supervisor.run_child(argv, limit)
            results += outcome.results
            if outcome.stop is None:
                if not outcome.results and outcome.code not in (0, 1):
                    return outcome.code  # the child could not start (no GPU, a checker bug)
                break
            show_stop(outcome.stop, args)
            if not outcome.stop.number:  # the child died before any check: no use going on
                return 1
            results.append({"number": outcome.stop.number, "status": "failed"})
            remaining = [n for n in remaining if n > outcome.stop.number]
        return _summary(results)
    if args.target == "progress":
        for _attempt in range(len(registry.numbers()) + 1):
            outcome = supervisor.run_child(_child_argv(args, "progress"), limit)
            if outcome.stop is None:
                return outcome.code
            # Remember the stopped step as failing; the next child reuses that result.
            show_stop(outcome.stop, args, quiet=True)
            if not outcome.stop.number:
                return 1
        return 1
    target = "next" if args.target == "next" else f"{args.number:02d}"
    outcome = supervisor.run_child(_child_argv(args, target), limit)
    if outcome.stop is not None:
        show_stop(outcome.stop, args)
    return outcome.code


def stop_problem(stop: supervisor.Stop, limit_hint: str):
    """The Problem to show for a check the parent had to end."""
    from checks.learner import Problem

    where = {}
    frame = supervisor.learner_frame(stop.stack, stop.file)
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


def show_stop(stop: supervisor.Stop, args, quiet: bool = False) -> None:
    """Report (unless ``quiet``) and remember a check that the parent had to end."""
    from checks import report
    from checks.engine import Report

    step = f"{stop.number:02d}"
    hint = f"python -m checks {step} --time-limit {max(4 * args.time_limit, 300):g}"
    problem = stop_problem(stop, hint)
    if not stop.number:
        report.console.print(f"[red]✗[/] {problem.title}\n  {problem.detail}")
        return
    if stop.fingerprint and stop.kind != "compile-timeout":  # MAX stuck: nothing to remember
        _store(stop.number, stop.fingerprint, "failed", problem.title)
    if quiet:
        report.console.print(f"[dim]Step {step} was stopped: {problem.title}[/]")
        return
    result = Report(stop.number, stop.title, Path(stop.file), target=stop.target, problem=problem)
    report.show(result)


def _summary(results: list[dict]) -> int:
    passed = sum(r.get("status") == "passed" for r in results)
    _console().print(f"\n{passed} passed, {len(results) - passed} failed")
    return 0 if results and passed == len(results) else 1


# --------------------------------------------------------------------------- the child


def _run_guarded(args) -> int:
    """Run the command here; a bug in the checker gives a short message, not a traceback."""
    try:
        return run_here(args)
    except KeyboardInterrupt:
        return 130
    except Exception:  # noqa: BLE001 - the last line of defence
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        text = traceback.format_exc()
        saved = CACHE_DIR / "last-error.txt"
        try:
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(text)
        except OSError:
            saved = None
        last = text.strip().splitlines()[-1]
        from checks.learner import scrub

        _error(f"The checker failed: {scrub(last)}")
        _console().print(
            "  That is a bug in the checker, not in your code. Please report it"
            + (f", with {os.path.relpath(saved)}." if saved else ".")
        )
        return 3


def run_here(args) -> int:
    import warnings

    from checks import report, runtime

    # MAX's own warnings (its eager interpreter falling back, say) are not the learner's.
    warnings.filterwarnings("ignore", module=r"max(\.|$)")
    try:
        target = runtime.pick_device(args.device)
    except runtime.DeviceUnavailable as exc:
        report.console.print(f"[red]✗[/] {exc}")
        return 2

    if args.target == "progress":
        return progress(target)
    if args.target == "next":
        return next_step(target)
    if args.target == "all":
        numbers = registry.numbers()
        if args.only:
            wanted = {int(n) for n in args.only.split(",") if n}
            numbers = [n for n in numbers if n in wanted]
        results = [check(n, None, target) for n in numbers]
        if supervisor.in_child():
            return 0 if all(r.passed for r in results) else 1  # the parent sums up
        return _summary([{"status": r.status} for r in results])
    return 0 if check(args.number, args.file, target).passed else 1


def run_one(number: int, path: Path | None, target):
    """Check one step, telling the parent (if any) which; returns (report, printed lines)."""
    from checks import engine, learner, report

    spec = registry.spec(number)
    file = Path(path) if path is not None else engine.step_file(number)
    own = _is_own(number, file)
    supervisor.send(
        "step",
        number=number,
        title=spec.title,
        file=str(file.resolve()) if file.exists() else str(file),
        target=target.label,
        fingerprint=_fingerprint(number, file, target) if own else None,
    )
    learner.take_printed()
    with report.progress(f"Step {number:02d}"):
        result = engine.run(spec, file, target, eager_first=eager_first())
    printed = learner.take_printed()
    if result.pending:  # ran eagerly: the warm-up compiles it for the next check
        from checks import warmup

        warmup.enqueue(number, result.pending, target)
        warmup.start_background()
    if own:
        _remember(number, file, target, result)
    supervisor.send(
        "done", number=number, status=result.status, detail=result.first_failure(), ran=result.ran
    )
    return result, printed


def eager_first() -> bool:
    """Whether a module MAX has not compiled yet runs eagerly first (its compile left to the
    warm-up, for the next check): yes, unless the warm-up is off or GPT2_CHECKS_EAGER_FIRST
    says otherwise."""
    from checks import warmup

    setting = os.environ.get(EAGER_FIRST_ENV)
    if setting in ("0", "1"):
        return setting == "1"
    return not warmup.disabled()


def check(number: int, path: Path | None, target):
    from checks import report

    result, printed = run_one(number, path, target)
    report.show(result, printed)
    return result


def next_step(target) -> int:
    """Check the first step that does not pass yet, and show its report."""
    from checks import engine, report

    state = _load_progress()
    for number in registry.numbers():
        path = engine.step_file(number)
        known = state.get(f"{number:02d}") or {}
        fresh = path.exists() and known.get("fingerprint") == _fingerprint(number, path, target)
        if fresh and known.get("status") == "passed" and known.get("compiled") is not False:
            continue
        result, printed = run_one(number, None, target)
        if not result.passed:
            report.show(result, printed)
            return 1
    report.console.print("[bold green]Every step passes.[/] Well done!")
    return 0


# --------------------------------------------------------------------------- progress


def _progress_file() -> Path:
    return CACHE_DIR / "progress.json"


def _is_own(number: int, path: Path) -> bool:
    """Only the learner's own step files count towards progress."""
    from checks import engine

    try:
        return Path(path).resolve() == engine.step_file(number).resolve()
    except OSError:
        return False


def _fingerprint(number: int, path: Path, target) -> str:
    """What a result depends on (see ``checks.fingerprint``)."""
    from checks import fingerprint

    return fingerprint.of_check(path, target.name)


def _load_progress() -> dict:
    try:
        state = json.loads(_progress_file().read_text())
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _store(
    number: int, fingerprint: str, status: str, detail: str, compiled: bool = True
) -> None:
    state = _load_progress()
    state[f"{number:02d}"] = {
        "fingerprint": fingerprint,
        "status": status,
        "detail": detail,
        "compiled": compiled,  # False: ran eagerly; the next check confirms it compiled
    }
    path = _progress_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(path)  # never a half-written file, even with two commands at once
    except OSError:
        pass


def _remember(number: int, path: Path, target, result) -> None:
    status = "not started" if result.status == "not-started" else result.status
    _store(
        number,
        _fingerprint(number, path, target),
        status,
        result.first_failure(),
        compiled=result.ran == "compiled",
    )


def progress(target) -> int:
    """A table of every step. Unchanged files reuse their last result instead of re-checking."""
    from checks import engine, report

    rows = []
    rechecked = []
    reused = 0
    state = _load_progress()
    for number in registry.numbers():
        spec = registry.spec(number)
        path = engine.step_file(number)
        if not path.exists():
            rows.append((number, spec.title, "missing", f"{os.path.relpath(path)} does not exist"))
            continue
        known = state.get(f"{number:02d}")
        if (
            not isinstance(known, dict)
            or known.get("fingerprint") != _fingerprint(number, path, target)
            or known.get("compiled") is False  # ran eagerly last time: check it compiled now
        ):
            result, _printed = run_one(number, path, target)
            rechecked.append(number)
            status = "not started" if result.status == "not-started" else result.status
            known = {"status": status, "detail": result.first_failure()}
        else:
            reused += 1
        status = str(known.get("status", "failed"))
        detail = str(known.get("detail", "")) if status != "passed" else ""
        rows.append((number, spec.title, status, detail))
    report.show_progress(rows)
    listed = ", ".join(f"{n:02d}" for n in rechecked) or "none"
    report.console.print(
        f"[dim]Checked now: {listed}. Unchanged since their last check: {reused}.[/]"
    )
    from checks import warmup

    report.console.print(f"[dim]{warmup.status().line()}[/]")
    return 0 if all(r[2] == "passed" for r in rows) else 1
