"""Running a job and showing it: what the command line (``checks.cli``) and the watch
(``checks.watch``) share.

``run_job`` hands a job to a worker (``checks.supervisor``) and feeds its events to a
``Screen``, which shows MAX's compiles as they happen and each report as it comes, and
remembers the learner's own results (``checks.progress``). ``show_stop`` reports a check the
parent had to end. Nothing here imports MAX.
"""

from __future__ import annotations

import os
from pathlib import Path

from checks import events, progress, report, supervisor

EAGER_FIRST_ENV = "GPT2_CHECKS_EAGER_FIRST"  # "1"/"0": run a new module eagerly first, or not


def eager_first() -> bool:
    """Whether a module MAX has not compiled yet runs eagerly first (its compile left to the
    warm-up, for the next check): yes, unless the warm-up is off or GPT2_CHECKS_EAGER_FIRST
    says otherwise."""
    from checks import warmup

    setting = os.environ.get(EAGER_FIRST_ENV)
    if setting in ("0", "1"):
        return setting == "1"
    return not warmup.disabled()


# --------------------------------------------------------------------------- jobs


class Screen:
    """What the learner sees of a job, as its events arrive: MAX's compiles as they happen,
    each report as it comes (``show``: which ones), and every own result remembered."""

    def __init__(self, show: str = "all") -> None:
        self.show = show  # "all" | "failed" (next: only the step to work on) | "none"
        self.reports: list = []  # engine.Report, as they came
        self.reused: list[int] = []
        self.started: events.Started | None = None
        self.status: report.CompileStatus | None = None

    def __call__(self, event) -> None:
        if isinstance(event, events.Started):
            self.started = event
            self._status().label = f"Step {event.number:02d}"
        elif isinstance(event, events.Compile):
            self._status()(event.on, event.what)
        elif isinstance(event, events.Checked):
            self.checked(event.report)
        elif isinstance(event, events.Reused):
            self.reused.append(event.number)

    def _status(self) -> report.CompileStatus:
        if self.status is None:
            self.status = report.CompileStatus("MAX")
        return self.status

    def checked(self, data: dict) -> None:
        from checks.results import Report

        result = Report.from_dict(data)
        self.reports.append(result)
        started = self.started
        if started is not None and started.fingerprint and started.number == result.number:
            progress.store(
                result.number,
                progress.Stored(
                    status=result.status,
                    detail=result.first_failure(),
                    fingerprint=started.fingerprint,
                    compiled=result.ran == "compiled",
                ),
            )
        self.started = None
        if self.show == "all" or (self.show == "failed" and not result.passed):
            report.show(result)

    def close(self) -> None:
        if self.status is not None:
            self.status.close()


def run_job(job: events.Job, args, screen: Screen) -> supervisor.Outcome:
    """``job`` in a worker (or here, with GPT2_CHECKS_IN_PROCESS=1: no time limit)."""
    try:
        if os.environ.get(supervisor.IN_PROCESS_ENV) == "1":
            return _in_process(job, screen)
        return supervisor.run(job, screen, time_limit=args.time_limit)
    finally:
        screen.close()


def _in_process(job: events.Job, screen: Screen) -> supervisor.Outcome:
    from checks import worker

    code = worker.run(job, on_report=lambda r: screen.checked(r.to_dict()))
    return supervisor.Outcome(code=code)


def job_for(args, command: str, numbers) -> events.Job:
    file = None
    if getattr(args, "file", None) is not None:
        file = str(Path(args.file).resolve())
    return events.Job(command, tuple(numbers), file, args.device, eager_first())


def show_stop(stop: supervisor.Stop, args, quiet: bool = False) -> None:
    """Report (unless ``quiet``) and remember a check that the parent had to end."""
    from checks.results import Report

    step = f"{stop.number:02d}"
    hint = report.command(
        f"{stop.number:02d}", "--time-limit", f"{max(4 * args.time_limit, 300):g}"
    )
    problem = report.stop_problem(stop, hint)
    if not stop.number:
        report.console.print(f"[red]✗[/] {problem.title}\n  {problem.detail}")
        return
    if stop.fingerprint and stop.kind != "compile-timeout":  # MAX stuck: nothing to remember
        progress.store(
            stop.number, progress.Stored(progress.FAILED, problem.title, stop.fingerprint)
        )
    if quiet:
        report.console.print(f"[dim]Step {step} was stopped: {problem.title}[/]")
        return
    report.show(
        Report(stop.number, stop.title, Path(stop.file), target=stop.target, problem=problem)
    )
