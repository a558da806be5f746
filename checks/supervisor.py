"""Run a check in a child process, so that no learner's code can hang or crash the checker.

``python -m checks`` does not import MAX itself. It starts a child (the same command with
``GPT2_CHECKS_CHANNEL`` set), and the child does the work: it imports the learner's file,
compiles, compares and prints the report. While the child runs the learner's code it says so
on a pipe (``enter``/``leave``, sent by ``checks.learner.guarded``), and the parent holds that
stretch to a time limit. A Python loop that never ends and a MAX call that never returns look
the same from outside, so one watchdog covers both.

The limit guards the learner's Python, never MAX's compiler. Every compile MAX does in the
child (a graph for ``Module.compile``, a kernel for an eager op used for the first time, a
wait for the warm-up that is compiling the same thing) is announced on the pipe
(``compile``), and the learner's clock stops while it lasts. A compile has a limit of its
own, far longer, and running past it is reported as MAX's doing.

When a limit passes, the parent asks the child where it is (``faulthandler`` writes every
thread's stack on a signal, even inside C code), stops the child's whole process group (MAX's
compiler workers included) and shows one report naming the learner's line. A child that dies
(a crash inside MAX, ``os._exit`` in the learner's file) is reported the same way.

The child's events, one JSON object per line:

* ``{"e": "step", "number", "title", "file", "target", "fingerprint"}``: a check starts;
* ``{"e": "enter", "doing"}`` / ``{"e": "leave"}``: the learner's code runs / stops;
* ``{"e": "compile", "on": true|false}``: MAX starts / ends a compile (the clock stops);
* ``{"e": "done", "number", "status", "detail"}``: a check ended;
* ``{"e": "finish", "code"}``: the child is about to exit normally.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHANNEL_ENV = "GPT2_CHECKS_CHANNEL"  # the child's end of the pipe, a file descriptor
STACKS_ENV = "GPT2_CHECKS_STACKS"  # where the child writes its stacks when asked
IN_PROCESS_ENV = "GPT2_CHECKS_IN_PROCESS"  # "1": no child, no time limit (for debugging)

DEFAULT_TIME_LIMIT = 60.0  # seconds the learner's code may run at a stretch, compiles aside
# One compile by MAX that runs longer than this is stuck: MAX's problem, reported as such.
# (The slowest measured: a GPT-2 graph on a 2-core machine with empty caches, about 5 minutes.)
COMPILE_TIME_LIMIT = 1800.0
EXIT_GRACE = 10.0  # seconds a child may take to exit after its last word
# The signal that asks the child for its stacks. Not SIGUSR1: once MAX's runtime runs eager
# code it takes SIGUSR1 for itself, and the stacks never come. A real-time signal is free.
STACKS_SIGNAL = getattr(signal, "SIGRTMIN", 0) + 7 if hasattr(signal, "SIGRTMIN") else getattr(
    signal, "SIGUSR1", None
)


# --------------------------------------------------------------------------- the child's side

_channel: int | None = None


def in_child() -> bool:
    return CHANNEL_ENV in os.environ


def start_child() -> None:
    """Open the channel to the parent; dump stacks on STACKS_SIGNAL; exit if the parent goes
    away."""
    global _channel
    try:
        _channel = int(os.environ[CHANNEL_ENV])
    except (KeyError, ValueError):
        return
    stacks = os.environ.get(STACKS_ENV)
    if stacks and STACKS_SIGNAL is not None:
        import faulthandler

        try:
            faulthandler.register(STACKS_SIGNAL, file=open(stacks, "w"), all_threads=True)  # noqa: SIM115
        except (OSError, ValueError, RuntimeError):
            pass
    parent = os.getppid()

    def orphaned() -> None:  # the parent was killed: nobody would stop us any more
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=orphaned, name="orphan-watch", daemon=True).start()


def send(event: str, **fields) -> None:
    """Tell the parent what is happening (a no-op when there is no parent)."""
    if _channel is None:
        return
    line = json.dumps({"e": event, **fields}, default=str) + "\n"
    try:
        os.write(_channel, line.encode())
    except OSError:
        pass


def enter(doing: str) -> None:
    send("enter", doing=doing)


def leave() -> None:
    send("leave")


# --------------------------------------------------------------------------- the parent's side


@dataclass
class Stop:
    """A check the parent had to end: the learner's code ran too long, or the child died."""

    number: int
    title: str
    file: str
    target: str
    fingerprint: str | None
    kind: str  # timeout (the learner's code) | compile-timeout (MAX's compiler) | crash
    doing: str | None  # what the learner's code was doing, None outside it
    limit: float = 0.0
    signal: str | None = None
    returncode: int | None = None
    stack: str = ""  # the child's stacks, when it could give them


@dataclass
class Outcome:
    code: int
    results: list[dict] = field(default_factory=list)  # the "done" events
    stop: Stop | None = None
    interrupted: bool = False
    started: list[int] = field(default_factory=list)  # step numbers, in order


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


def run_child(
    argv: list[str], time_limit: float = DEFAULT_TIME_LIMIT, compile_limit: float | None = None
) -> Outcome:
    """Run ``python -m checks ARGV`` in a child process under the watchdog.

    The child's output goes straight to this process's stdout and stderr (so a terminal stays
    a terminal). Raises ``KeyboardInterrupt`` after stopping the child on Ctrl-C.
    """
    compile_limit = COMPILE_TIME_LIMIT if compile_limit is None else compile_limit
    read_end, write_end = os.pipe()
    handle, stacks_path = tempfile.mkstemp(prefix="gpt2-checks-", suffix=".stacks")
    os.close(handle)
    env = dict(os.environ)
    env[CHANNEL_ENV] = str(write_end)
    env[STACKS_ENV] = stacks_path
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # When a child dies mid-check, multiprocessing's helper (MAX starts one) warns about
    # "leaked semaphores" on stderr: noise for a learner, and already reported properly.
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    env["PYTHONWARNINGS"] = ",".join(w for w in (env.get("PYTHONWARNINGS"), quiet) if w)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "checks", *argv],
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
    step: dict | None = None
    finished, finished_at = False, 0.0
    buffer = b""
    try:
        while True:
            if finished:  # said goodbye: a thread the learner started may not let it exit
                wait = max(0.0, finished_at + EXIT_GRACE - time.monotonic())
            else:
                wait = clock.wait(time_limit, compile_limit)
            ready, _, _ = select.select([read_end], [], [], wait)
            if not ready and finished:
                _kill(proc)
                break
            if not ready:
                stack = _ask_for_stacks(proc, stacks_path)
                _kill(proc)
                if clock.compiling:
                    outcome.stop = _stop(
                        step, "compile-timeout", clock.doing, limit=compile_limit, stack=stack
                    )
                else:
                    outcome.stop = _stop(
                        step, "timeout", clock.doing, limit=time_limit, stack=stack
                    )
                outcome.code = 1
                return outcome
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                kind = event.get("e")
                if kind == "enter":
                    clock.enter(str(event.get("doing", "")))
                elif kind == "leave":
                    clock.leave()
                elif kind == "compile":
                    clock.compile(bool(event.get("on")))
                elif kind == "step":
                    step = event
                    clock.reset()
                    outcome.started.append(int(event["number"]))
                elif kind == "done":
                    outcome.results.append(event)
                    step = None
                    clock.reset()
                elif kind == "finish":
                    finished, finished_at = True, time.monotonic()
                    outcome.code = int(event.get("code", 1))
        code = proc.wait()
        if not finished and step is None and outcome.results:
            # It died between checks (MAX crashing at exit, say): every result is in.
            _kill(proc)
            outcome.code = 0 if all(r.get("status") == "passed" for r in outcome.results) else 1
        elif not finished:
            _kill(proc)  # what it left behind (MAX's helper processes) goes too
            outcome.code = code if code > 0 else 1
            outcome.stop = _stop(  # step None: it died before any check began
                step,
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


def _stop(step: dict | None, kind: str, doing: str | None, **extra) -> Stop:
    step = step or {}
    return Stop(
        number=int(step.get("number", 0)),
        title=str(step.get("title", "")),
        file=str(step.get("file", "")),
        target=str(step.get("target", "")),
        fingerprint=step.get("fingerprint"),
        kind=kind,
        doing=doing,
        **extra,
    )


def _ask_for_stacks(proc: subprocess.Popen, path: str) -> str:
    """The child's Python stacks, written by faulthandler on STACKS_SIGNAL (empty if it
    cannot)."""
    if STACKS_SIGNAL is None:
        return ""
    try:
        proc.send_signal(STACKS_SIGNAL)
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
