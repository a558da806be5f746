"""The one way a check runs: in a child process (``checks.child``), its reports read back.

The command's process never imports MAX. ``checks`` starts one child for a list of steps,
reads the child's log as it grows and hands each report on as it arrives. If the child dies
(a crash in MAX, ``os._exit`` in the learner's file), the log's last lines say which step and
what the learner's code was doing; the steps after it get a new child. A child silent for
``STUCK_AFTER`` seconds (MAX's compiler stuck: the learner's own code is stopped by the
child's time limit long before) is stopped and reported as MAX's doing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from checks.child import Job
from checks.learner import Problem
from checks.results import Report
from gpt2 import course

DEFAULT_TIME_LIMIT = 60.0  # seconds the learner's code may run at a stretch, compiles aside
STUCK_AFTER = 1800.0  # seconds without a word from the child (the slowest compile: ~5 min)
IN_PROCESS_ENV = "GPT2_CHECKS_IN_PROCESS"  # "1": no child process, no time limit (debugging)
STOPS = ("died", "timeout")  # the child ended with the check: later steps get a new one


def checks(
    numbers: Iterable[int],
    *,
    file: str | None = None,
    device: str = "auto",
    time_limit: float = DEFAULT_TIME_LIMIT,
    on_report: Callable[[Report], None] = lambda report: None,
) -> list[Report]:
    """Check ``numbers`` in order; each report goes to ``on_report`` as it comes."""
    remaining, reports = list(numbers), []
    while remaining:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
            log = handle.name
        try:
            job = Job(tuple(remaining), file, device, time_limit, log)
            for found in _child(job):
                _remember(found)
                reports.append(found)
                on_report(found)
        finally:
            os.unlink(log)
        done = {r.number for r in reports}
        stopped = reports and reports[-1].problem and reports[-1].problem.kind in STOPS
        if not stopped:
            break
        remaining = [n for n in remaining if n not in done]
    return reports


def _child(job: Job):
    """Run ``job``; yield each report as the child writes it, then one for a death."""
    if os.environ.get(IN_PROCESS_ENV) == "1":
        import dataclasses

        from checks import child

        child.main([dataclasses.replace(job, time_limit=float("inf")).to_json()])
        yield from (e for e in _entries(job.log, 0)[0] if isinstance(e, Report))
        return
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(course.ROOT), env.get("PYTHONPATH"))))
    # A child that dies mid-check leaves MAX's multiprocessing helper warning about "leaked
    # semaphores": noise, and the death is reported properly.
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    env["PYTHONWARNINGS"] = ",".join(filter(None, (env.get("PYTHONWARNINGS"), quiet)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "checks.child", job.to_json()],
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: it and MAX's helpers stop together
    )
    read, step, doing, heard, target = 0, None, None, time.monotonic(), ""
    try:
        while True:
            exited = proc.poll() is not None
            entries, read_to = _entries(job.log, read)
            if read_to != read:
                read, heard = read_to, time.monotonic()
            for entry in entries:
                if isinstance(entry, Report):
                    step, doing = None, None
                    yield entry
                elif "step" in entry:
                    step, doing = entry["step"], None
                elif "target" in entry:
                    target = entry["target"]
                elif "failed" in entry:
                    _stop(proc)
                    raise ChildFailed(entry["failed"])
                else:
                    doing = entry["doing"]
            if exited:
                break
            if time.monotonic() - heard > STUCK_AFTER:
                _stop(proc)
                if step is not None:
                    yield _stuck(job, step, target)
                return
            time.sleep(0.05)
    except KeyboardInterrupt:
        _stop(proc)
        raise
    _stop(proc)  # what it left behind (MAX's helper processes) goes too
    if step is not None:
        yield _died(job, step, doing, proc.returncode, target)
    elif proc.returncode not in (0, 1) and read == 0:
        raise ChildFailed(
            f"The check could not start (exit status {proc.returncode}). Is MAX installed in "
            'this environment? Try `python -c "import max.driver"`.'
        )


class ChildFailed(Exception):
    """The child ended before any check began (MAX missing, no GPU for --device gpu…): the
    message says why."""


def _entries(path: str, start: int) -> tuple[list, int]:
    """The complete lines of the log after byte ``start``, parsed; and where they end."""
    try:
        with open(path, "rb") as log:
            log.seek(start)
            data = log.read()
    except OSError:
        return [], start
    end = data.rfind(b"\n") + 1
    found = []
    for line in data[:end].splitlines():
        entry = json.loads(line)
        found.append(Report.from_dict(entry["report"]) if "report" in entry else entry)
    return found, start + end


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    if sys.stdout.isatty():  # the child's spinner may have hidden the cursor mid-line
        sys.stdout.write("\r\x1b[2K\x1b[?25h")
        sys.stdout.flush()


def _report(job: Job, number: int, problem: Problem, target: str) -> Report:
    from checks.child import own_file

    path = Path(job.file) if job.file else course.step_file(number)
    own = target and own_file(number, path)
    fingerprint = course.fingerprint(path, target.split(",")[0]) if own else None
    return Report(
        number, course.step(number).title, path, target, problem=problem, fingerprint=fingerprint
    )


def _died(job: Job, number: int, doing: str | None, code: int, target: str) -> Report:
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    if doing:
        problem = Problem(
            "died",
            f"The check's process ended ({how}) while {doing}.",
            "Your code ended Python (os._exit? os.kill?) or made MAX crash. A step file "
            "should only define things.",
        )
    else:
        problem = Problem(
            "died",
            f"The checker itself crashed ({how}) while checking step {number:02d}.",
            "That is a bug in the checker or in MAX, not in your code. Please report it, with "
            "the output of the same command.",
        )
    return _report(job, number, problem, target)


def _stuck(job: Job, number: int, target: str) -> Report:
    return _report(  # not remembered as failing: MAX's doing, not the file's
        job,
        number,
        Problem(
            "died",
            f"MAX's compiler worked for {STUCK_AFTER / 60:g} minutes without finishing.",
            "That is MAX, not your code: your code does not run while MAX compiles, and that "
            "time never counts against it. Run the check again; if it happens again, please "
            "report it with the output of the same command.",
        ),
        "",
    )


def _remember(found: Report) -> None:
    """The learner's own file's result, for ``progress`` and ``python -m gpt2 --mine``."""
    if found.fingerprint:
        course.store_result(
            found.number, course.Stored(found.status, found.first_failure(), found.fingerprint)
        )
