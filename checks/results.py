"""What a check finds, as named types: an ``Item`` per thing checked, a ``Report`` per step.

A report travels from the check's process to the command's as one line of JSON
(``to_dict``) and is shown there (``checks.report``). Nothing here imports MAX.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from checks.learner import Problem
from gpt2.course import FAILED, PASSED


@dataclass
class Item:
    ok: bool
    label: str
    detail: str = ""


@dataclass
class Report:
    number: int
    title: str
    file: Path
    target: str = ""
    status: str = FAILED  # PASSED | FAILED | NOT_STARTED (gpt2.course)
    items: list[Item] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    problem: Problem | None = None
    seconds: float = 0.0
    printed: list[str] = field(default_factory=list)  # what the learner's code printed
    fingerprint: str | None = None  # set for the learner's own file: progress remembers it

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
        data = dataclasses.asdict(self)
        data["file"] = str(self.file)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        problem = data.get("problem")
        return cls(
            **{
                **data,
                "file": Path(data["file"]),
                "items": [Item(**i) for i in data.get("items", [])],
                "problem": None if problem is None else Problem(**problem),
            }
        )
