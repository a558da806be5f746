"""Locks shared by every process of the course: the checks and the warm-up.

POSIX file locks (``fcntl.flock``) on files in ``.cache/checks/locks``: the operating system
releases them when a process dies, so a killed warm-up never leaves a stale lock behind.
This module imports nothing heavy; the checker's parent process uses it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from checks import paths


def _folder() -> Path:
    return paths.cache_dir() / "locks"


def _open(name: str):
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    return open(folder / f"{name}.lock", "a+")  # noqa: SIM115 - closed by the caller


@contextlib.contextmanager
def lock(
    name: str, on_wait: Callable[[], contextlib.AbstractContextManager] | None = None
) -> Iterator[None]:
    """Hold the lock ``name``; if another process holds it, wait (inside ``on_wait()``)."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): go ahead unlocked
        yield
        return
    try:
        handle = _open(name)
    except OSError:  # a read-only cache: go ahead unlocked
        yield
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with on_wait() if on_wait else contextlib.nullcontext():
                fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock


@contextlib.contextmanager
def try_lock(name: str) -> Iterator[bool]:
    """Hold the lock ``name`` if it is free; yields whether this process got it."""
    try:
        import fcntl
    except ImportError:
        yield True
        return
    try:
        handle = _open(name)
    except OSError:
        yield True
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        handle.close()


def held(name: str) -> bool:
    """Whether some process holds the lock ``name`` now."""
    with try_lock(name) as mine:
        return not mine
