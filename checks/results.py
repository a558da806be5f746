"""What a check finds, as named types: an ``Item`` per thing checked, a ``Report`` per step.

A report travels from the worker to the parent process as plain data (``to_dict``) and is
shown there (``checks.report``). Nothing here imports MAX or NumPy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from checks.learner import Problem
from checks.progress import FAILED, PASSED
from checks.spec import Case


@dataclass
class Item:
    ok: bool
    label: str
    detail: str = ""


class CaseResult(NamedTuple):
    """One input of a module step's check, and what came out of it."""

    case: Case
    x: Any  # the input (a NumPy array)
    mine: Any  # the learner's output
    reference: Any
    variants: list | None  # each known mistake's output, in spec order (only to diagnose)


@dataclass
class Report:
    number: int
    title: str
    file: Path
    target: str = ""
    status: str = FAILED  # PASSED | FAILED | NOT_STARTED (checks.progress)
    items: list[Item] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    problem: Problem | None = None
    seconds: float = 0.0
    printed: list[str] = field(default_factory=list)  # what the learner's code printed
    # Module steps: per input, what came out (only in the worker: for diagnosis and tests).
    results: list[CaseResult] = field(default_factory=list, repr=False)
    # "compiled": your module ran through MAX's graph compiler; "eager": on MAX's eager
    # interpreter, its graph not compiled yet (``pending`` lists what to compile for next time).
    ran: str = "compiled"
    pending: list = field(default_factory=list, repr=False)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def first_failure(self) -> str:
        if self.problem is not None:
            return self.problem.title
        for item in self.items:
            if not item.ok:
                return f"{item.label}: {item.detail}" if item.detail else item.label
        return ""

    def to_dict(self) -> dict:
        """What the learner sees, as plain data (it travels to the parent process as JSON)."""
        return {
            "number": self.number,
            "title": self.title,
            "file": str(self.file),
            "target": self.target,
            "status": self.status,
            "items": [dataclasses.asdict(i) for i in self.items],
            "hints": list(self.hints),
            "problem": None if self.problem is None else self.problem.to_dict(),
            "seconds": self.seconds,
            "printed": list(self.printed),
            "ran": self.ran,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        return cls(
            number=data["number"],
            title=data["title"],
            file=Path(data["file"]),
            target=data.get("target", ""),
            status=data.get("status", FAILED),
            items=[Item(**i) for i in data.get("items", [])],
            hints=list(data.get("hints", [])),
            problem=None if data.get("problem") is None else Problem(**data["problem"]),
            seconds=data.get("seconds", 0.0),
            printed=list(data.get("printed", [])),
            ran=data.get("ran", "compiled"),
        )
