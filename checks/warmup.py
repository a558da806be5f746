"""The warm-up: compile what the checks need before a learner waits for it.

Checks run the learner's code on MAX's eager interpreter, which runs each op on a kernel
compiled once per machine; on 2 cores a kernel takes 10-20 s the first time it is used, and
every step uses new ones. The first check therefore starts this warm-up in the background:
one low-priority process that outlives the check and compiles, in the order a learner meets
them,

1. each op family's kernels, cut down to the dtypes the course computes in (``FAMILIES``,
   ``KEEP``; see ``gpt2.max_internals``), in MAX's own cache, where a check's process loads
   them at a family's first op (``use_course_kernels``);
2. the tiny GPT-2 that step 12's ``generate`` compiles (the same graph for every learner:
   MAX keeps it in its cache, so the check loads it in a second or two).

It is safe to start twice (one lock: the second exits at once), resumes after being killed
(each task leaves its result in MAX's cache, and the done ones are listed in
``.cache/checks/warmup/state.json``), and logs to ``.cache/checks/warmup/warmup.log``.
``GPT2_CHECKS_WARMUP=0`` (or ``--no-warmup``) keeps it from starting; ``python -m checks
warm`` runs it in the foreground with a progress bar.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import resource
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gpt2 import course

DISABLE_ENV = "GPT2_CHECKS_WARMUP"  # "0": never start the warm-up in the background
JOBS_ENV = "GPT2_CHECKS_WARMUP_JOBS"  # tasks at once (default 2: a compile keeps ~1.4 cores busy)
# The op families the course's code uses, roughly in the order a learner meets them.
FAMILIES = (
    "range",
    "data_movement",
    "binary",
    "select",
    "band_part",
    "shape_rearrange",
    "reduce_axis",
    "unary",
    "matmul",
    "gather",
    "cast",
)
# The dtypes the course computes in (float32; int64 ids; bool comparisons; int32 indices),
# and the unsigned widths MAX copies them as (a pure copy of a float32 is a uint32 copy).
KEEP = frozenset({"float32", "int64", "int32", "bool", "uint8", "uint32", "uint64"})
STEP_12_MODEL = "the tiny GPT-2 of step 12"
TASKS = tuple(f"eager kernels · {name}" for name in FAMILIES) + (STEP_12_MODEL,)


def folder() -> Path:
    return course.cache_dir() / "warmup"


def log_file() -> Path:
    return folder() / "warmup.log"


class InterpretFirst:
    """MAX's eager interpreter, and MAX's compiler only for a graph the interpreter refuses.

    MAX's default eager executor interprets a graph while it compiles the same graph in
    background processes, for next time. A check never runs the same graph twice, and on
    2 cores those compiles take the cores the check needs: this one compiles nothing the
    interpreter can run (MAX's public executors, ``InterpreterExecutor`` and
    ``CompilingExecutor``, one after the other)."""

    def __init__(self) -> None:
        from max.experimental.executor import CompilingExecutor, InterpreterExecutor

        self.interpreter, self.compiler = InterpreterExecutor(max_ops=None), CompilingExecutor()

    def execute(self, graph, inputs):
        from max.experimental.executor import UnsupportedGraphError

        try:
            return self.interpreter.execute(graph, inputs)
        except UnsupportedGraphError:
            return self.compiler.execute(graph, inputs)


def use_course_kernels() -> None:
    """Set a check's process up for eager code: the interpreter first, and the warm-up's
    batches of kernels loaded at each family's first op."""
    from max.experimental import executor

    from gpt2 import max_internals

    executor.set_default_executor(InterpretFirst())
    max_internals.load_course_batches(FAMILIES, KEEP)


def run_task(name: str, device: str) -> None:
    """One task, in this process (``python -m checks warm --task NAME``)."""
    from gpt2 import max_internals, runtime

    target = runtime.pick_device(device)
    if name == STEP_12_MODEL:
        from gpt2.compiled import logits_function
        from solutions.solution_11 import load_pretrained

        model = load_pretrained(course.TINY_GPT2, device=target.device)[1]
        logits_function(model)([0])
        return
    max_internals.compile_batch(name.removeprefix("eager kernels · "), KEEP)


# --------------------------------------------------------------------------- state


@dataclass
class State:
    fingerprint: str = ""  # MAX's version, the course's code, the device
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    peak_mb: float = 0.0

    @classmethod
    def load(cls) -> State:
        try:
            data = json.loads((folder() / "state.json").read_text())
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self) -> None:
        course.write_json(folder() / "state.json", asdict(self))

    @property
    def running(self) -> bool:
        return running()

    def line(self) -> str:
        total = len(TASKS)
        if self.finished:
            return f"Warm-up: done ({total} of {total}); checks need no new compiles."
        if running():
            doing = f", now {', '.join(self.current)}" if self.current else ""
            return f"Warm-up: {len(self.done)} of {total} done{doing} (in the background)."
        if self.done:
            return f"Warm-up: {len(self.done)} of {total} done, paused; the next check resumes it."
        return "Warm-up: not started; the next check starts it (or run `python -m checks warm`)."


def fingerprint(device: str) -> str:
    return course.digest(course.course_files(), extra=f"warm-up {device}")


def status(device: str = "cpu") -> State:
    state = State.load()
    return state if state.fingerprint == fingerprint(device) else State()


@contextlib.contextmanager
def _lock():
    """Yields whether this process holds the warm-up's lock (the OS frees it if we die)."""
    folder().mkdir(parents=True, exist_ok=True)
    with open(folder() / "lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def running() -> bool:
    with _lock() as mine:
        return not mine


def disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "1") == "0"


# --------------------------------------------------------------------------- the process


def start_background(device: str = "auto") -> bool:
    """Start the warm-up in the background unless it is off, running or done. Never waits."""
    if disabled() or running() or status("gpu" if device == "gpu" else "cpu").finished:
        return False
    folder().mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(course.ROOT), env.get("PYTHONPATH"))))
    with open(log_file(), "a") as log:
        subprocess.Popen(
            [sys.executable, "-m", "checks", "warm", "--background", "--device", device],
            cwd=course.ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the check, and Ctrl-C in its terminal
        )
    return True


def _jobs() -> int:
    try:
        return max(1, int(os.environ.get(JOBS_ENV, "")))
    except ValueError:
        return 2 if (os.cpu_count() or 1) >= 2 else 1


def _in_a_process(name: str, device: str, log) -> int:
    """Run one task in a process of its own (what MAX holds after a compile, hundreds of MB,
    is given back when the task ends); its exit status."""
    return subprocess.call(
        [sys.executable, "-m", "checks", "warm", "--task", name, "--device", device],
        cwd=course.ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def work(device: str, on_change=lambda state: None, tasks=TASKS, run=_in_a_process) -> State:
    """Do every task of ``tasks`` not done yet, ``_jobs()`` at a time, each by ``run(name,
    device, log)``. The caller holds the lock."""
    from gpt2 import runtime

    target = runtime.pick_device(device)
    key = fingerprint(target.name)
    state = State.load()
    if state.fingerprint != key:
        state = State(fingerprint=key)
    state.started, state.finished, state.current = state.started or time.time(), 0.0, []
    state.save()
    log = open(log_file(), "a")  # noqa: SIM115 - closed below
    print(
        f"{time.strftime('%H:%M:%S')} warm-up started (pid {os.getpid()}, {target.label})",
        file=log,
        flush=True,
    )

    def one(name: str) -> None:
        began = time.monotonic()
        state.current.append(name)
        state.save()
        on_change(state)
        print(f"{time.strftime('%H:%M:%S')} {name} …", file=log, flush=True)
        code = run(name, target.name, log)
        kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        state.peak_mb = max(state.peak_mb, kb / 1024)
        state.current.remove(name)
        if name in state.failed:
            state.failed.remove(name)
        (state.done if code == 0 else state.failed).append(name)
        state.save()
        on_change(state)
        outcome = "done" if code == 0 else f"failed (exit status {code})"
        print(
            f"{time.strftime('%H:%M:%S')} {name} {outcome} in {time.monotonic() - began:.0f} s "
            f"(peak {state.peak_mb:.0f} MB)",
            file=log,
            flush=True,
        )

    todo = queue.SimpleQueue()
    for name in tasks:
        if name not in state.done:
            todo.put(name)
    stopped: list[BaseException] = []

    def worker() -> None:
        while not stopped:  # after a failure, nothing more starts
            try:
                name = todo.get_nowait()
            except queue.Empty:
                return
            try:
                one(name)
            except BaseException as exc:  # noqa: BLE001 - raised again below, in this thread
                stopped.append(exc)

    workers = [threading.Thread(target=worker) for _ in range(_jobs())]
    try:
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    finally:
        log.close()
    if stopped:
        raise stopped[0]
    if not state.failed:  # a failed task is tried again by the next check's warm-up
        state.finished = time.time()
    state.save()
    on_change(state)
    return state


def main(background: bool, device: str = "auto") -> int:
    """``python -m checks warm``: in the foreground with a progress bar, or (``background``)
    as the low-priority process a check starts."""
    if background:
        os.nice(19)  # the learner's checks come first
    with _lock() as mine:
        if not mine:
            return 0 if background else _follow()
        if background:
            work(device)
            return 0
        return _foreground(device)


def _foreground(device: str) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from checks.report import console

    with Progress(
        TextColumn("[bold]Warm-up[/]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as bar:
        shown = bar.add_task("", total=len(TASKS))

        def on_change(state: State) -> None:
            done = len(state.done) + len(state.failed)
            bar.update(shown, completed=done, description=", ".join(state.current))

        state = work(device, on_change)
    failed = f"; failed: {', '.join(state.failed)} (see {log_file()})" if state.failed else ""
    console.print(f"Warm-up done: {len(TASKS)} tasks, peak {state.peak_mb:.0f} MB{failed}.")
    return 1 if state.failed else 0


def _follow() -> int:
    """Another warm-up runs (started by a check): show its progress until it is done."""
    from checks.report import console

    console.print(
        "A warm-up is already running in the background; following it (Ctrl-C stops "
        "following, not the warm-up)."
    )
    last = None
    while running():
        line = State.load().line()
        if line != last:
            console.print(line)
            last = line
        time.sleep(2.0)
    console.print(State.load().line())
    return 0
