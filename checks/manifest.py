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


def parse(text: str) -> tuple[Step, ...]:
    """The steps a manifest's text lists, in order."""
    data = tomllib.loads(text)
    return tuple(sorted((_step(e) for e in data.get("step", [])), key=lambda s: s.number))


@functools.cache
def steps() -> tuple[Step, ...]:
    """Every step of the course, in order."""
    return parse(MANIFEST.read_text())


def defining(name: str) -> Step:
    """The step whose public names include ``name`` (``load_pretrained`` → step 11)."""
    for entry in steps():
        if name in entry.names:
            return entry
    raise KeyError(f"no step of course.toml defines {name}")


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


CONTRACT_PAGE = paths.ROOT / "book" / "src" / "contract.md"


def contract_markdown(entries: tuple[Step, ...] | None = None) -> str:
    """The book's contract page, made from the manifest (``python -m checks new-step`` and
    tests/test_manifest.py keep book/src/contract.md equal to it)."""
    lines = [
        "# The contract",
        "",
        "<!-- Made from course.toml by checks/manifest.py: edit the manifest, not this page. -->",
        "",
        "Every step's file defines exactly these names, with exactly these signatures: the",
        "checks look them up in your file, later steps import them, and",
        "`python -m gpt2 --mine` builds GPT-2 from them. Parameter names follow HuggingFace's",
        "GPT-2 so that OpenAI's weights load. Everything else in a step file is yours to",
        "name as you like.",
        "",
        "| step | name | signature | what it must do |",
        "|---|---|---|---|",
    ]
    for entry in steps() if entries is None else entries:
        for public in entry.public:
            signature = public.signature.replace("|", "\\|")
            contract = public.contract.replace("|", "\\|")
            lines.append(
                f"| [{entry.tag}](step_{entry.tag}.md) | `{public.name}` | `{signature}` | {contract} |"
            )
    return "\n".join(lines) + "\n"
