"""The course's manifest, ``course.toml``: every step's number, title, kind and contract.

It is the one registry of the course. The checker takes its list of steps from it, the book's
contract page is made from it, and tests hold pixi.toml, SUMMARY.md, README.md and the
skeletons and solutions to it. Nothing here imports MAX.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field

from checks import paths

MANIFEST = paths.ROOT / "course.toml"
KINDS = ("module", "value", "generation")


@dataclass(frozen=True)
class Public:
    """A name a step's file must define, with its signature (as ``inspect.signature`` shows
    it, names of modules left out) and what it must do."""

    name: str
    signature: str
    contract: str


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    kind: str  # module | value | generation
    you_write: str  # README's table: "you write …"
    public: tuple[Public, ...]
    hints: tuple[str, ...] = field(default=())  # the hint ladder: idea, ops, shape of code

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.public)

    @property
    def tag(self) -> str:
        return f"{self.number:02d}"


def _step(entry: dict) -> Step:
    kind = entry["kind"]
    if kind not in KINDS:
        raise ValueError(f"course.toml: step {entry.get('number')} has kind {kind!r}")
    return Step(
        number=int(entry["number"]),
        title=str(entry["title"]),
        kind=kind,
        you_write=str(entry["you_write"]),
        public=tuple(Public(p["name"], p["signature"], p["contract"]) for p in entry["public"]),
        hints=tuple(entry.get("hints", ())),
    )


@functools.cache
def steps() -> tuple[Step, ...]:
    """Every step, in order."""
    data = tomllib.loads(MANIFEST.read_text())
    found = tuple(sorted((_step(e) for e in data.get("step", [])), key=lambda s: s.number))
    return found


def step(number: int) -> Step:
    for entry in steps():
        if entry.number == number:
            return entry
    raise KeyError(f"no step {number:02d} in course.toml")


def numbers() -> list[int]:
    return [s.number for s in steps()]


_MODULE_PREFIX = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Z]\w*)")


def plain_signature(text: str) -> str:
    """A signature as written in the manifest: no module paths (``max.experimental.tensor.
    Tensor`` → ``Tensor``), no quotes around postponed annotations."""
    return _MODULE_PREFIX.sub("", text.replace("'", ""))
