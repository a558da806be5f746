"""The worker's end of the pipe to the parent process (see ``checks.events``).

The worker process opens it at start (``open_from_env``); the checker's modules then say
what happens (``send``): ``checks.learner`` around the learner's code, ``checks.runtime``
around MAX's compiles. Outside a worker (tests, ``GPT2_CHECKS_IN_PROCESS=1``) it is closed,
and sending does nothing.
"""

from __future__ import annotations

import os
import signal
import threading
import time

from checks import events

CHANNEL_ENV = "GPT2_CHECKS_CHANNEL"  # the worker's end of the pipe, a file descriptor
STACKS_ENV = "GPT2_CHECKS_STACKS"  # where the worker writes its stacks when asked
JOB_ENV = "GPT2_CHECKS_JOB"  # the job, as JSON
# The signal that asks the worker for its stacks. Not SIGUSR1: once MAX's runtime runs eager
# code it takes SIGUSR1 for itself, and the stacks never come. A real-time signal is free.
STACKS_SIGNAL = (
    signal.SIGRTMIN + 7 if hasattr(signal, "SIGRTMIN") else getattr(signal, "SIGUSR1", None)
)

_fd: int | None = None


def is_open() -> bool:
    return _fd is not None


def open_from_env() -> None:
    """Open the pipe to the parent; dump stacks on STACKS_SIGNAL; exit if the parent dies."""
    global _fd
    try:
        _fd = int(os.environ[CHANNEL_ENV])
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


def send(event) -> None:
    """Tell the parent (a no-op when there is none)."""
    if _fd is None:
        return
    try:
        os.write(_fd, events.encode(event))
    except OSError:
        pass


def enter(doing: str) -> None:
    send(events.Enter(doing))


def leave() -> None:
    send(events.Leave())
