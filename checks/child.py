"""The process a check runs in: ``python -m checks.child JOB``, started by ``checks.run``.

It imports MAX, checks the steps the job names one after another and appends what happens
to the job's log, one JSON object a line: ``{"step": N}`` when a check begins, ``{"doing":
"…"}`` when the learner's code starts a stretch, ``{"report": {…}}`` when a check ends. The
command's process reads the log; if this process dies, the log says where it was.

The learner's code runs under the time limit (``checks.learner.CLOCK``): a watchdog thread
writes a report naming the learner's line and ends the process. MAX's compiles stop the
clock and are shown on stderr as they happen (``checks.report.CompileStatus``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from checks import learner
from checks.learner import Problem
from checks.results import Report
from gpt2 import course

DEBUG_ENV = "GPT2_CHECKS_DEBUG"  # "1": the checker's own tracebacks are not caught
TIMEOUT_EXIT = 3


@dataclass(frozen=True)
class Job:
    numbers: tuple[int, ...]
    file: str | None  # check this file instead of steps/step_NN.py (one step only)
    device: str
    time_limit: float
    log: str  # where the JSON lines go

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        return cls(**{**data, "numbers": tuple(data["numbers"])})


class Log:
    """The job's log: one JSON object a line, whole lines only (the watchdog writes too)."""

    def __init__(self, path: str) -> None:
        self.out = open(path, "a")  # noqa: SIM115 - open for the process's life
        self.lock = threading.Lock()

    def write(self, **entry) -> None:
        with self.lock:
            self.out.write(json.dumps(entry) + "\n")
            self.out.flush()


def main(argv: list[str]) -> int:
    sys.dont_write_bytecode = True  # never write next to the learner's files
    if str(course.ROOT) not in sys.path:
        sys.path.insert(0, str(course.ROOT))
    job = Job.from_json(argv[0])
    log = Log(job.log)
    from checks import report
    from gpt2 import max_internals, runtime

    runtime.quiet_max()
    warnings.filterwarnings("ignore", module=r"max(\.|$)")  # MAX's warnings are not the learner's
    from checks import warmup

    warmup.use_course_kernels()
    status = report.CompileStatus()
    max_internals.announce_compiles(learner.CLOCK.compile)
    max_internals.announce_compiles(status)
    try:
        target = runtime.pick_device(job.device)
    except runtime.DeviceUnavailable as exc:
        log.write(failed=str(exc))  # the command says so, and checks nothing
        return 2
    log.write(target=target.label)
    current: list[Report] = []

    def on_timeout(doing: str) -> None:
        found = current[-1]
        where = {}
        for _ in range(20):  # MAX may be between two of the learner's lines: look again
            where = learner.main_thread_line(found.file)
            if where:
                break
            time.sleep(0.05)
        found.problem = Problem(
            "timeout",
            f"Your code did not finish within {job.time_limit:g} s while {doing}.",
            "The check stopped it. Is there a loop that never ends, or a wait for something?\n"
            "If your code is only slow, allow more time: "
            + report.command(
                f"{found.number:02d}", "--time-limit", f"{max(4 * job.time_limit, 300):g}"
            ),
            **where,
        )
        found.printed = learner.take_printed()
        log.write(report=found.to_dict())
        status.close()
        os._exit(TIMEOUT_EXIT)

    learner.CLOCK.watch(job.time_limit, on_timeout)
    learner.CLOCK.on_change = lambda doing: log.write(doing=doing)
    passed = True
    for number in job.numbers:
        path = Path(job.file) if job.file else course.step_file(number)
        own = own_file(number, path)
        fingerprint = course.fingerprint(path, target.name) if own else None
        current.append(
            Report(number, course.step(number).title, path, target.label, fingerprint=fingerprint)
        )
        status.label = f"Step {number:02d}"
        log.write(step=number)
        found = check(number, path, target)
        found.fingerprint = fingerprint
        status.settle()
        passed = passed and found.passed
        log.write(report=found.to_dict())
    status.close()
    return 0 if passed else 1


def own_file(number: int, path: Path) -> bool:
    """Whether ``path`` is the learner's own file of step ``number`` (what progress counts)."""
    return path.exists() and path.resolve() == course.step_file(number).resolve()


def check(number: int, path: Path, target) -> Report:
    """One step's check; a bug of the checker's own becomes a report that says so."""
    from checks import engine

    learner.take_printed()
    try:
        found = engine.check(number, path, target)
    except Exception:  # noqa: BLE001 - the checker's own bug: said in one line, kept in a file
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        found = _checker_failure(number, path, target)
    found.printed = learner.take_printed()
    return found


def _checker_failure(number: int, path: Path, target) -> Report:
    text = traceback.format_exc()
    saved = course.cache_dir() / "last-error.txt"
    try:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(text)
    except OSError:
        saved = None
    last = learner.scrub(text.strip().splitlines()[-1])
    problem = Problem(
        "crash",
        f"The checker failed: {last}",
        "That is a bug in the checker, not in your code. Please report it"
        + (f", with {os.path.relpath(saved)}." if saved else "."),
    )
    return Report(number, course.step(number).title, path, target=target.label, problem=problem)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
