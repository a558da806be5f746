"""What flows between the two processes of a check: one job down, events back.

The command (``checks.cli``, the parent) never imports MAX. It sends one ``Job`` to a worker
process (``checks.worker``), which checks the steps and sends back events, one JSON object
per line on a pipe: where it is (``Started``, ``Enter``/``Leave`` around the learner's code,
``Compile`` around MAX's compiles), what it found (``Checked`` with the whole report,
``Reused`` for a stored result that still holds) and ``Finished``. The parent holds the
learner's code to its time limit, stores results and shows them. Data flows one way.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Job:
    """What the worker is asked to do."""

    command: str  # "check" (each of numbers) | "next" | "progress"
    numbers: tuple[int, ...] = ()
    file: str | None = None  # check this file as if it were the step (one number only)
    device: str = "auto"
    eager_first: bool = False

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        data["numbers"] = tuple(data.get("numbers", ()))
        return cls(**data)


@dataclass(frozen=True)
class Ready:
    """The worker has MAX loaded and a device."""

    target: str  # "cpu, float32"
    device: str  # "cpu" | "gpu"


@dataclass(frozen=True)
class Started:
    """A check begins."""

    number: int
    title: str
    file: str
    fingerprint: str | None  # the learner's own step file only: what progress remembers


@dataclass(frozen=True)
class Enter:
    """The learner's code runs (the clock runs), doing this."""

    doing: str


@dataclass(frozen=True)
class Leave:
    """The learner's code returned."""


@dataclass(frozen=True)
class Compile:
    """MAX starts (on) or ends a compile, or a wait for one (what): the clock stops."""

    on: bool
    what: str = "compile"


@dataclass(frozen=True)
class Checked:
    """A check ended: its report, as ``engine.Report.to_dict`` gives it."""

    report: dict = field(hash=False)


@dataclass(frozen=True)
class Reused:
    """``progress``: a step unchanged since its last check, not checked again."""

    number: int


@dataclass(frozen=True)
class Finished:
    """The worker is about to exit normally."""

    code: int


EVENTS = {
    cls.__name__: cls for cls in (Ready, Started, Enter, Leave, Compile, Checked, Reused, Finished)
}


def encode(event) -> bytes:
    return (json.dumps({"e": type(event).__name__, **dataclasses.asdict(event)}) + "\n").encode()


def decode(line: bytes):
    """The event on one line, or None for a line that is not one."""
    try:
        data = json.loads(line)
        return EVENTS[data.pop("e")](**data)
    except (ValueError, KeyError, TypeError):
        return None
