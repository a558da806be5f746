"""The worker process of a check: ``python -m checks.worker``, started by ``checks.supervisor``.

It takes one job (``checks.events.Job``, in ``GPT2_CHECKS_JOB``), checks the steps it names
and sends back what happens and what it found, as events on a pipe; it prints nothing. The
parent stores the results and shows them.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings

from checks import channel, events, paths, progress, registry

DEBUG_ENV = "GPT2_CHECKS_DEBUG"  # "1": the checker's own tracebacks are not caught


def main() -> int:
    sys.dont_write_bytecode = True  # never write next to the learner's files
    if str(paths.ROOT) not in sys.path:
        sys.path.insert(0, str(paths.ROOT))
    channel.open_from_env()
    job = events.Job.from_json(os.environ[channel.JOB_ENV])
    try:
        code = run(job)
    except KeyboardInterrupt:
        code = 130
    channel.send(events.Finished(code))
    return code


def run(job: events.Job, on_report=None) -> int:
    """Do ``job`` here, sending events; ``on_report(report)`` gets each ``engine.Report``."""
    from checks import runtime

    runtime.on_compile(lambda on, what: channel.send(events.Compile(on, what)))
    # MAX's own warnings (its eager interpreter falling back, say) are not the learner's.
    warnings.filterwarnings("ignore", module=r"max(\.|$)")
    target = runtime.pick_device(job.device)  # DeviceUnavailable: the parent says so
    channel.send(events.Ready(target.label, target.name))
    results = []
    for number in job.numbers:
        if job.command in ("next", "progress"):
            settled = progress.settled(number, target.name)
            if settled is not None and (job.command == "progress" or settled.status == "passed"):
                channel.send(events.Reused(number))
                continue
        report = check(number, job.file, target, job.eager_first)
        results.append(report)
        if on_report:
            on_report(report)
        if job.command == "next" and not report.passed:
            break
    return 0 if all(r.passed for r in results) else 1


def check(number: int, file: str | None, target, eager_first: bool):
    """One step's check, announced and reported on the channel; returns its report."""
    from checks import engine, learner

    spec = registry.spec(number)
    path = paths.step_file(number) if file is None else paths.ROOT.joinpath(file)
    own = progress.is_own(number, path)
    from checks import fingerprint

    channel.send(
        events.Started(
            number=number,
            title=spec.title,
            file=str(path.resolve()) if path.exists() else str(path),
            fingerprint=fingerprint.of_check(path, target.name) if own else None,
        )
    )
    learner.take_printed()
    try:
        report = engine.run(spec, path, target, eager_first=eager_first)
    except Exception:  # noqa: BLE001 - the checker's own bug: said in one line, kept in a file
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        report = _checker_failure(spec, path, target)
    report.printed = learner.take_printed()
    if report.pending:  # ran eagerly: the warm-up compiles its graph for the next check
        from checks import warmup

        warmup.enqueue(number, report.pending, target)
        warmup.start_background()
    channel.send(events.Checked(report.to_dict()))
    return report


def _checker_failure(spec, path, target):
    from checks.learner import Problem, scrub
    from checks.results import Report

    text = traceback.format_exc()
    saved = paths.cache_dir() / "last-error.txt"
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(text)
    except OSError:
        saved = None
    last = scrub(text.strip().splitlines()[-1])
    problem = Problem(
        "crash",
        f"The checker failed: {last}",
        "That is a bug in the checker, not in your code. Please report it"
        + (f", with {os.path.relpath(saved)}." if saved else "."),
    )
    return Report(spec.number, spec.title, path, target=target.label, problem=problem)


if __name__ == "__main__":
    sys.exit(main())
