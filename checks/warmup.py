"""The warm-up: compile what the course's checks need before a learner waits for it.

MAX compiles lazily: an eager op's kernel the first time it runs on a machine, a graph the
first time ``Module.compile`` sees it. On 2 cores that is minutes per step, and it used to
fall on the learner's first checks. The first check a learner runs therefore starts this
warm-up in the background: one low-priority process that outlives the check and compiles,
step by step, what the checks will need:

1. the eager interpreter's kernels for every op a chapter names (``checks.eager_kernels``);
2. the graphs a learner's own code compiles: the tiny GPT-2 of steps 12 and 13;
3. with ``--all``, every other step's reference and known-mistake graphs.

Between two tasks, and for a while after the last, it compiles what checks hand it
(``enqueue``): a learner's module that just ran on the eager interpreter, so that the next
check of the same file runs it compiled.

It is safe to start twice (one lock: the second exits at once), resumes after being killed
(finished tasks are recorded, and every compiled graph is a file that stays), never blocks a
check (checks take no lock it holds for long: a check that needs a graph the warm-up is
compiling right now waits for that one graph, see ``runtime.file_lock``), and logs to
``.cache/checks/warmup/warmup.log``. ``GPT2_CHECKS_WARMUP=0`` (or ``--no-warmup``) keeps it
from starting; ``python -m checks warm`` runs it in the foreground with a progress bar.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from checks import manifest, paths, registry

ROOT = paths.ROOT
DISABLE_ENV = "GPT2_CHECKS_WARMUP"  # "0": never start the warm-up in the background
IDLE_EXIT = 15 * 60.0  # seconds the background warm-up waits for new work before it exits


def folder() -> Path:
    return paths.cache_dir() / "warmup"


def _state_file() -> Path:
    return folder() / "state.json"


def log_file() -> Path:
    return folder() / "warmup.log"


def _queue() -> Path:
    return folder() / "queue"


# --------------------------------------------------------------------------- the tasks


@dataclass(frozen=True)
class Task:
    name: str  # as shown: "step 07 · reference graphs"
    run: Callable[[object], None]  # (target) -> None
    # A graph compile: up to 1.8 GB at once, so it runs alone (an eager family takes ~1.2 GB,
    # and two of them may run side by side): the warm-up stays under 3 GB in all.
    alone: bool = False


def tasks(everything: bool = False) -> list[Task]:
    """What the warm-up compiles, in the order a learner needs it.

    A check answers from MAX's eager interpreter whenever the graph it would compile is not
    compiled yet (the learner's module, the reference's, the known mistakes'), so what the
    checks need ahead of time is the interpreter's kernels, and the graphs a learner's own
    code compiles: the tiny GPT-2 that steps 12 and 13 generate with (the reference's model,
    and its cached twin). ``everything`` adds every other step's reference and known-mistake
    graphs: what a check compiles when it does not run eagerly first (``--no-warmup``, the
    course's own tests).
    """
    numbers = registry.numbers()
    specs = {n: registry.spec(n) for n in numbers}
    from checks import eager_kernels

    work = [Task(f"eager kernels · {name}", _eager_family(name)) for name in eager_kernels.FAMILIES]
    # Step 14's reference check starts a server (minutes of compiling, a gigabyte more):
    # only with ``everything``; its own check shows MAX compiling while the learner waits.
    compiles_the_reference = [
        n
        for n in numbers
        if manifest.step(n).kind == "generation" and not getattr(specs[n], "starts_server", False)
    ]
    work += [
        Task(f"step {n:02d} · reference graphs", _reference(n), alone=True)
        for n in compiles_the_reference
    ]
    if everything:
        work += [
            Task(f"step {n:02d} · reference graphs", _reference(n), alone=True)
            for n in numbers
            if n not in compiles_the_reference
        ]
        work += [
            Task(f"step {n:02d} · known-mistake graphs", _mistakes(n), alone=True)
            for n in numbers
            if specs[n].kind == "module" and any(m.variant is not None for m in specs[n].mistakes)
        ]
    return work


def _eager_family(name: str) -> Callable[[object], None]:
    def run(_target) -> None:
        from checks import eager_kernels

        eager_kernels.compile_family(name)

    return run


def _reference(number: int) -> Callable[[object], None]:
    def run(target) -> None:
        from checks import engine

        report = engine.run(registry.spec(number), engine.solution_file(number), target)
        if not report.passed:
            raise RuntimeError(f"the reference of step {number:02d} fails its own check")

    return run


def _mistakes(number: int) -> Callable[[object], None]:
    def run(target) -> None:
        from checks import engine

        engine.compile_mistakes(registry.spec(number), target)

    return run


# --------------------------------------------------------------------------- state


@dataclass
class State:
    fingerprint: str = ""
    device: str = ""
    done: list[str] = field(default_factory=list)
    total: int = 0
    current: str = ""
    started: float = 0.0
    finished: float = 0.0
    peak_mb: float = 0.0
    failed: list[str] = field(default_factory=list)

    @classmethod
    def load(cls) -> State:
        try:
            data = json.loads(_state_file().read_text())
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self) -> None:
        path = _state_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.__dict__, indent=1))
            tmp.replace(path)
        except OSError:
            pass


def fingerprint() -> str:
    """What the warm-up's results depend on: MAX's version and the course's code."""
    from checks import fingerprint as fp

    return fp.digest(fp.course_files(), extra="warm-up")


@dataclass(frozen=True)
class Status:
    running: bool
    done: int
    total: int
    current: str
    finished: bool

    def line(self) -> str:
        if self.finished:
            return f"Warm-up: done ({self.total} of {self.total}); checks need no new compiles."
        if self.running:
            doing = f", now {self.current}" if self.current else ""
            return f"Warm-up: {self.done} of {self.total} done{doing} (in the background)."
        if self.done:
            return f"Warm-up: {self.done} of {self.total} done, paused; the next check resumes it."
        return "Warm-up: not started; the next check starts it (or run `python -m checks warm`)."


def running() -> bool:
    """Whether a warm-up process holds the lock now."""
    from checks import locks

    return locks.held("warmup")


def status() -> Status:
    state = State.load()
    fresh = state.fingerprint == fingerprint()
    total = state.total or len(tasks())
    done = len(state.done) if fresh else 0
    return Status(
        running=running(),
        done=done,
        total=total,
        current=state.current if fresh else "",
        finished=fresh and bool(state.finished) and done >= total,
    )


# --------------------------------------------------------------------------- starting


def disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "1") == "0"


def start_background() -> bool:
    """Start the warm-up in the background unless it is off, running or done. Never waits."""
    if disabled() or running():
        return False
    if status().finished and not any(_queue().glob("*.json")):
        return False
    folder().mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with open(log_file(), "a") as log:
        subprocess.Popen(
            [sys.executable, "-m", "checks", "warm", "--background"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the check, and Ctrl-C in its terminal
        )
    return True


def enqueue(number: int, graphs: list, target) -> None:
    """Hand the warm-up traced graphs to compile (a learner's module that ran eagerly).

    Each graph travels as MAX module bytecode, as MAX's own compile pool sends graphs to its
    workers, with the file its compiled artifact goes to. A newer call for the same step
    replaces an older one that is still waiting: only the file as it is now matters.
    """
    from checks import runtime

    queue = _queue()
    queue.mkdir(parents=True, exist_ok=True)
    for old in queue.glob(f"step{number:02d}-*"):
        old.unlink(missing_ok=True)
    for i, graph in enumerate(graphs):
        mef = runtime.mef_path(graph)
        if mef.exists():
            continue
        stem = queue / f"step{number:02d}-{i}-{mef.stem}"
        stem.with_suffix(".mlirbc").write_bytes(graph._module.bytecode)
        info = {"mef": str(mef), "device": target.name, "queued": time.time()}
        tmp = stem.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(stem.with_suffix(".json"))  # the .json last: the entry is complete


def waiting(number: int) -> bool:
    """Whether graphs of step ``number`` wait in the queue, or are being compiled."""
    return any(_queue().glob(f"step{number:02d}-*"))


# --------------------------------------------------------------------------- the process


_log_to = None  # the foreground's log file; the background's stdout is the log already


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=_log_to or sys.stdout, flush=True)


def _peak_mb() -> float:
    """The largest resident memory of this process or any task it ran in a child."""
    kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


QUEUE_TASK = "learner graphs"  # the task name of a child that compiles the queue


def _child(name: str, target) -> subprocess.Popen:
    """Start one task in a process of its own: what MAX holds after a compile (hundreds of MB)
    is given back when the task ends, so the warm-up stays within a few GB."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "checks", "warm", "--task", name, "--device", target.name],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=_log_to or sys.stdout,
        stderr=subprocess.STDOUT,
    )


def jobs() -> int:
    """How many tasks run at once: 2 where there are 2 cores or more. A compile keeps about
    1.4 cores busy, so two share the machine well; both run at low priority."""
    try:
        return max(1, int(os.environ.get("GPT2_CHECKS_WARMUP_JOBS", "")))
    except ValueError:
        return 2 if (os.cpu_count() or 1) >= 2 else 1


def run_task(name: str, device: str) -> int:
    """``python -m checks warm --task NAME``: one task, in this process (see ``_run_in_child``)."""
    from checks import runtime

    target = runtime.pick_device(device)
    if name == QUEUE_TASK:
        while _compile_queued(target):
            pass
        return 0
    for task in tasks(everything=True):
        if task.name == name:
            try:
                task.run(target)
            except Exception:  # noqa: BLE001 - logged for whoever reads the log
                traceback.print_exc()
                return 1
            return 0
    print(f"no warm-up task {name!r}", file=sys.stderr)
    return 2


def _compile_queued(target) -> bool:
    """Compile the newest waiting learner graph, if any. Returns whether there was one."""
    entries = sorted(_queue().glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for entry in entries:
        try:
            info = json.loads(entry.read_text())
            bytecode = entry.with_suffix(".mlirbc").read_bytes()
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)
            continue
        mef = Path(info["mef"])
        if not mef.exists() and info.get("device") == target.name:
            _log(f"compiling a learner's graph ({entry.stem})")
            from checks import runtime

            try:
                runtime.compile_bytecode(bytecode, mef, target)
            except Exception as exc:  # noqa: BLE001 - the check reports it when it compiles
                _log(f"  could not compile it: {str(exc).splitlines()[0][:200]}")
        entry.unlink(missing_ok=True)
        entry.with_suffix(".mlirbc").unlink(missing_ok=True)
        return True
    return False


def work(
    target,
    on_task: Callable[[State], None] | None = None,
    idle: float = 0.0,
    isolate: bool = True,
    everything: bool = False,
) -> State:
    """Do every task not done yet, and what checks queue meanwhile (first); then wait ``idle``
    seconds for more queued work. With ``isolate`` each task runs in a child process, ``jobs()``
    at a time; without, one after another in this process. The caller holds the lock."""
    state = State.load()
    key = fingerprint()
    if state.fingerprint != key or state.device != target.name:
        state = State(fingerprint=key, device=target.name)
    todo = [task for task in tasks(everything) if task.name not in state.done]
    state.total = len(tasks(everything))
    state.started = state.started or time.time()
    state.finished = 0.0
    state.save()
    running: dict[str, tuple[subprocess.Popen | None, float]] = {}

    def begin(name: str) -> None:
        running[name] = (_child(name, target) if isolate else None, time.monotonic())
        state.current = ", ".join(n for n in running if n != QUEUE_TASK)
        state.save()
        if name != QUEUE_TASK:
            _log(f"{name} …")
        if on_task:
            on_task(state)

    def end(name: str, ok: bool) -> None:
        _proc, began = running.pop(name)
        if name != QUEUE_TASK:
            if not ok:
                state.failed.append(name)
            state.done.append(name)
        state.peak_mb = max(state.peak_mb, _peak_mb())
        state.current = ", ".join(n for n in running if n != QUEUE_TASK)
        state.save()
        if name != QUEUE_TASK:
            _log(
                f"{name} {'done' if ok else 'failed'} in {time.monotonic() - began:.0f} s "
                f"(peak {state.peak_mb:.0f} MB)"
            )
        if on_task:
            on_task(state)

    alone: set[str] = {t.name for t in todo if t.alone} | {QUEUE_TASK}

    def room_for(name: str) -> bool:
        if any(n in alone for n in running):
            return False
        if name in alone:
            return not running
        return len(running) < (jobs() if isolate else 1)

    def serve_queue() -> None:
        # A learner waits for this one: it goes first, as soon as there is room.
        if QUEUE_TASK not in running and any(_queue().glob("*.json")) and room_for(QUEUE_TASK):
            begin(QUEUE_TASK)
            if not isolate:
                while _compile_queued(target):
                    pass
                end(QUEUE_TASK, True)

    try:
        while todo or running:
            serve_queue()
            queued = any(_queue().glob("*.json")) and QUEUE_TASK not in running
            while todo and not queued and room_for(todo[0].name):
                task = todo.pop(0)
                begin(task.name)
                if not isolate:
                    try:
                        task.run(target)
                        end(task.name, True)
                    except Exception:  # noqa: BLE001 - one failing task must not stop the others
                        _log(f"{task.name} failed:\n{traceback.format_exc()}")
                        end(task.name, False)
            for name, (proc, _began) in list(running.items()):
                if proc is not None and proc.poll() is not None:
                    end(name, proc.returncode == 0)
            if running:
                time.sleep(0.5)
    finally:
        for proc, _began in running.values():
            if proc is not None:
                proc.kill()
    state.current = ""
    state.finished = time.time()
    state.save()
    if on_task:
        on_task(state)
    _log(f"all {state.total} tasks done")
    deadline = time.monotonic() + idle
    while time.monotonic() < deadline:
        if any(_queue().glob("*.json")):
            proc = _child(QUEUE_TASK, target) if isolate else None
            if proc is not None:
                proc.wait()
            else:
                while _compile_queued(target):
                    pass
            deadline = time.monotonic() + idle
        else:
            time.sleep(1.0)
    return state


def main(background: bool, device: str = "auto", everything: bool = False) -> int:
    """``python -m checks warm``: in the foreground with a progress bar, or (``background``)
    as the low-priority process a check starts."""
    from checks import locks, runtime

    if background:
        try:
            os.nice(19)  # the learner's checks come first
        except OSError:
            pass
    with locks.try_lock("warmup") as mine:
        if not mine:
            if background:
                return 0
            return _follow()
        target = runtime.pick_device(device)
        if background:
            _log(f"warm-up started (pid {os.getpid()}, {target.label})")
            work(target, idle=IDLE_EXIT)
            return 0
        global _log_to
        folder().mkdir(parents=True, exist_ok=True)
        with open(log_file(), "a") as _log_to:
            return _foreground(target, everything)


def _foreground(target, everything: bool) -> int:
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
        shown = bar.add_task("", total=len(tasks(everything)))

        def on_task(state: State) -> None:
            bar.update(shown, completed=len(state.done), description=state.current)

        state = work(target, on_task=on_task, everything=everything)
    failed = f"; failed: {', '.join(state.failed)} (see {log_file()})" if state.failed else ""
    console.print(f"Warm-up done: {len(state.done)} tasks, peak {state.peak_mb:.0f} MB{failed}.")
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
        now = status()
        if now.line() != last:
            console.print(now.line())
            last = now.line()
        if now.finished:
            break
        time.sleep(2.0)
    console.print(status().line())
    return 0
