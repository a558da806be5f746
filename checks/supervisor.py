"""Run a job in a worker process, so that no learner's code can hang or crash the checker.

``python -m checks`` does not import MAX itself. It hands one job (``checks.events.Job``) to a
worker (``python -m checks.worker``), which imports the learner's file, compiles, compares
and sends back events (``checks.events``). While the worker runs the learner's code it says
so (``Enter``/``Leave``, sent by ``checks.learner.guarded``), and this process holds that
stretch to a time limit. A Python loop that never ends and a MAX call that never returns look
the same from outside, so one watchdog covers both.

The limit guards the learner's Python, never MAX's compiler. Every compile MAX does in the
worker (a graph for ``Module.compile``, a kernel for an eager op used for the first time, a
wait for the warm-up that is compiling the same thing) is announced (``Compile``), and the
learner's clock stops while it lasts. A compile has a limit of its own, far longer, and
running past it is reported as MAX's doing.

When a limit passes, this process asks the worker where it is (``faulthandler`` writes every
thread's stack on a signal, even inside C code), stops the worker's whole process group (MAX's
compiler workers included) and reports a ``Stop`` naming the learner's line. A worker that
dies (a crash inside MAX, ``os._exit`` in the learner's file) is reported the same way.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from checks import channel, events, paths

ROOT = paths.ROOT

IN_PROCESS_ENV = "GPT2_CHECKS_IN_PROCESS"  # "1": no worker process, no time limit (debugging)

DEFAULT_TIME_LIMIT = 60.0  # seconds the learner's code may run at a stretch, compiles aside
# One compile by MAX that runs longer than this is stuck: MAX's problem, reported as such.
# (The slowest measured: a GPT-2 graph on a 2-core machine with empty caches, about 5 minutes.)
COMPILE_TIME_LIMIT = 1800.0
EXIT_GRACE = 10.0  # seconds a worker may take to exit after its last word


# --------------------------------------------------------------------------- the parent's side


@dataclass
class Stop:
    """A check the parent had to end: the learner's code ran too long, or the worker died."""

    number: int  # 0: before any check began
    title: str
    file: str
    fingerprint: str | None
    target: str  # "cpu, float32" ("" before the worker said)
    kind: str  # timeout (the learner's code) | compile-timeout (MAX's compiler) | crash
    doing: str | None  # what the learner's code was doing, None outside it
    limit: float = 0.0
    signal: str | None = None
    returncode: int | None = None
    stack: str = ""  # the worker's stacks, when it could give them


@dataclass
class Outcome:
    code: int
    stop: Stop | None = None
    target: str = ""  # the worker's device, as it said in Ready ("cpu, float32")
    device: str = ""  # "cpu" | "gpu"
    done: list[int] = field(default_factory=list)  # steps checked or reused, in order


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class LearnerClock:
    """Time the learner's code has run, not counting the compiles MAX does meanwhile.

    ``phases`` are the stretches of learner code in progress (innermost last), each with the
    learner time at which it began; ``compiling`` counts the compiles in progress.
    """

    def __init__(self) -> None:
        self.phases: list[tuple[str, float]] = []  # (doing, learner time at enter)
        self.compiling = 0
        self.compile_began = 0.0
        self._compiled = 0.0  # seconds spent compiling, finished compiles

    def now(self, wall: float | None = None) -> float:
        wall = time.monotonic() if wall is None else wall
        spent = self._compiled + (wall - self.compile_began if self.compiling else 0.0)
        return wall - spent

    def enter(self, doing: str) -> None:
        self.phases.append((doing, self.now()))

    def leave(self) -> None:
        if self.phases:
            self.phases.pop()

    def compile(self, on: bool) -> None:
        wall = time.monotonic()
        if on:
            if self.compiling == 0:
                self.compile_began = wall
            self.compiling += 1
        elif self.compiling:
            self.compiling -= 1
            if self.compiling == 0:
                self._compiled += wall - self.compile_began

    def reset(self) -> None:
        self.phases = []

    @property
    def doing(self) -> str | None:
        return self.phases[-1][0] if self.phases else None

    def wait(self, time_limit: float, compile_limit: float) -> float | None:
        """Seconds until a limit passes (None: no limit runs now)."""
        wall = time.monotonic()
        if self.compiling:
            return max(0.0, self.compile_began + compile_limit - wall)
        if self.phases:
            return max(0.0, self.phases[-1][1] + time_limit - self.now(wall))
        return None


def run(
    job: events.Job,
    on_event: Callable[[object], None] = lambda _event: None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    compile_limit: float = COMPILE_TIME_LIMIT,
) -> Outcome:
    """Run ``job`` in a worker under the watchdog; every event goes to ``on_event``.

    Raises ``KeyboardInterrupt`` after stopping the worker on Ctrl-C.
    """
    read_end, write_end = os.pipe()
    handle, stacks_path = tempfile.mkstemp(prefix="gpt2-checks-", suffix=".stacks")
    os.close(handle)
    env = dict(os.environ)
    env[channel.CHANNEL_ENV] = str(write_end)
    env[channel.STACKS_ENV] = stacks_path
    env[channel.JOB_ENV] = job.to_json()
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # When a worker dies mid-check, multiprocessing's helper (MAX starts one) warns about
    # "leaked semaphores" on stderr: noise for a learner, and already reported properly.
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    env["PYTHONWARNINGS"] = ",".join(w for w in (env.get("PYTHONWARNINGS"), quiet) if w)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "checks.worker"],
            env=env,
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: Ctrl-C and kill reach it all
        )
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        os.unlink(stacks_path)
        raise
    os.close(write_end)
    outcome = Outcome(code=1)
    clock = LearnerClock()
    step: events.Started | None = None
    finished_at: float | None = None
    buffer = b""
    try:
        while True:
            if finished_at is not None:  # said goodbye: a learner's thread may keep it alive
                wait = max(0.0, finished_at + EXIT_GRACE - time.monotonic())
            else:
                wait = clock.wait(time_limit, compile_limit)
            ready, _, _ = select.select([read_end], [], [], wait)
            if not ready and finished_at is not None:
                _kill(proc)
                break
            if not ready:
                stack = _ask_for_stacks(proc, stacks_path)
                _kill(proc)
                if clock.compiling:
                    on_event(events.Compile(False))
                kind = "compile-timeout" if clock.compiling else "timeout"
                limit = compile_limit if clock.compiling else time_limit
                outcome.stop = _stop(
                    step, outcome.target, kind, clock.doing, limit=limit, stack=stack
                )
                return outcome
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                event = events.decode(line)
                if isinstance(event, events.Enter):
                    clock.enter(event.doing)
                elif isinstance(event, events.Leave):
                    clock.leave()
                elif isinstance(event, events.Compile):
                    clock.compile(event.on)
                elif isinstance(event, events.Ready):
                    outcome.target, outcome.device = event.target, event.device
                elif isinstance(event, events.Started):
                    step = event
                    clock.reset()
                elif isinstance(event, (events.Checked, events.Reused)):
                    number = (
                        event.report["number"]
                        if isinstance(event, events.Checked)
                        else event.number
                    )
                    outcome.done.append(int(number))
                    step = None
                    clock.reset()
                elif isinstance(event, events.Finished):
                    finished_at = time.monotonic()
                    outcome.code = event.code
                if event is not None:
                    on_event(event)
        code = proc.wait()
        if finished_at is None and step is None and outcome.done:
            # It died between checks (MAX crashing at exit, say): every result is in.
            _kill(proc)
            outcome.code = 1
        elif finished_at is None:
            _kill(proc)  # what it left behind (MAX's helper processes) goes too
            outcome.code = code if code > 0 else 1
            outcome.stop = _stop(  # step None: it died before any check began
                step,
                outcome.target,
                "crash",
                clock.doing,
                signal=_signal_name(-code) if code < 0 else None,
                returncode=code,
            )
        return outcome
    except KeyboardInterrupt:
        _kill(proc)
        raise
    finally:
        os.close(read_end)
        try:
            os.unlink(stacks_path)
        except OSError:
            pass
        if proc.poll() is None:
            _kill(proc)


def _stop(step: events.Started | None, target: str, kind: str, doing: str | None, **extra) -> Stop:
    return Stop(
        number=step.number if step else 0,
        title=step.title if step else "",
        file=step.file if step else "",
        fingerprint=step.fingerprint if step else None,
        target=target,
        kind=kind,
        doing=doing,
        **extra,
    )


def _ask_for_stacks(proc: subprocess.Popen, path: str) -> str:
    """The worker's Python stacks, written by faulthandler on a signal (empty if it cannot)."""
    if channel.STACKS_SIGNAL is None:
        return ""
    try:
        proc.send_signal(channel.STACKS_SIGNAL)
    except OSError:
        return ""
    deadline = time.monotonic() + 2.0
    size = -1
    while time.monotonic() < deadline:
        time.sleep(0.05)
        try:
            now = os.path.getsize(path)
        except OSError:
            return ""
        if now and now == size:
            break
        size = now
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _kill(proc: subprocess.Popen) -> None:
    """Stop the child and everything it started (MAX compiles in worker processes)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        try:
            proc.kill()
        except OSError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    if sys.stdout.isatty():  # the child's spinner may have hidden the cursor mid-line
        sys.stdout.write("\r\x1b[2K\x1b[?25h")
        sys.stdout.flush()


_FRAME = re.compile(r'^\s*File "(?P<file>.+)", line (?P<line>\d+) in (?P<func>\S+)')


def learner_frame(stack: str, learner_file: str) -> tuple[int, str] | None:
    """(line, function) of the innermost frame of the main thread in ``learner_file``."""
    if not stack or not learner_file:
        return None
    try:
        target = Path(learner_file).resolve()
    except OSError:
        return None
    # faulthandler lists the current thread first, most recent call first; prefer the main one.
    blocks = re.split(r"\n(?=(?:Current thread|Thread) 0x)", stack)
    blocks.sort(key=lambda b: "in <module>" not in b and "MainThread" not in b)
    for block in blocks:
        for line in block.splitlines():
            m = _FRAME.match(line)
            if not m:
                continue
            try:
                if Path(m.group("file")).resolve() == target:
                    return int(m.group("line")), m.group("func")
            except OSError:
                continue
    return None
