"""The course as the runtime sees it: where its files are, what ``course.toml`` lists, which
of the learner's steps pass, and how ``--mine`` imports the learner's steps.

The checker (``checks``) writes the learner's results; this module reads them (``passing``)
so that ``python -m gpt2 --mine`` and ``python -m gpt2 serve --mine`` use the learner's own
files where their check passes. Nothing here imports MAX.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.abc
import importlib.util
import json
import os
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "course.toml"
CACHE_ENV = "GPT2_CHECKS_CACHE"  # moves the checker's cache (default: .cache/checks)
# What the checks read: the tiny GPT-2 of steps 11-14, in two checkpoint layouts, written by
# scripts/make_fixtures.py (the tests use it too).
DATA = ROOT / "checks" / "data"
TINY_GPT2 = DATA / "tiny-gpt2"
KINDS = ("module", "value", "generation", "kernel")
# A kernel step's files are Mojo (steps/step_NN.mojo); every other step's are Python.
KERNEL = "kernel"


def cache_dir() -> Path:
    """The checker's cache: the learner's results, hints seen, the warm-up's state and log."""
    return Path(os.environ.get(CACHE_ENV, ROOT / ".cache" / "checks"))


def suffix(number: int) -> str:
    """The learner's and the reference's files of step ``number`` end in this."""
    return ".mojo" if step(number).kind == KERNEL else ".py"


def step_file(number: int) -> Path:
    return ROOT / "steps" / f"step_{number:02d}{suffix(number)}"


def solution_file(number: int) -> Path:
    return ROOT / "solutions" / f"solution_{number:02d}{suffix(number)}"


def chapter_file(number: int) -> Path:
    return ROOT / "book" / "src" / f"step_{number:02d}.md"


def spec_file(number: int) -> Path:
    return ROOT / "checks" / "specs" / f"step_{number:02d}.py"


# --------------------------------------------------------------------------- the manifest


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
    kind: str  # module | value | generation | kernel
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


def step(number: int) -> Step:
    for entry in steps():
        if entry.number == number:
            return entry
    raise KeyError(f"no step {number:02d} in course.toml")


def numbers() -> list[int]:
    return [s.number for s in steps()]


def defining(name: str) -> Step:
    """The step whose public names include ``name`` (``load_pretrained`` → step 11)."""
    for entry in steps():
        if name in entry.names:
            return entry
    raise KeyError(f"no step of course.toml defines {name}")


# --------------------------------------------------------------------------- results


PASSED, FAILED, NOT_STARTED, MISSING = "passed", "failed", "not started", "missing"
STATUSES = (PASSED, FAILED, NOT_STARTED, MISSING)


@dataclass(frozen=True)
class Stored:
    """A check's result on the learner's own file, valid while its fingerprint is."""

    status: str  # one of STATUSES
    detail: str  # the first problem, for the progress table
    fingerprint: str


def _progress_file() -> Path:
    return cache_dir() / "progress.json"


def load_results() -> dict[int, Stored]:
    try:
        data = json.loads(_progress_file().read_text())
    except (OSError, ValueError):
        return {}
    found = {}
    for key, value in data.items() if isinstance(data, dict) else ():
        try:
            found[int(key)] = Stored(**value)
        except (TypeError, ValueError):
            continue
    return found


def write_json(path: Path, data) -> None:
    """Write ``data`` as JSON in one step (never half a file, even with two processes)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:  # a read-only cache: results are not remembered, nothing else breaks
        pass


def store_result(number: int, result: Stored) -> None:
    state = {f"{n:02d}": asdict(s) for n, s in load_results().items()}
    state[f"{number:02d}"] = asdict(result)
    write_json(_progress_file(), state)


def max_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("max")
    except PackageNotFoundError:
        return "unknown"


def course_files() -> list[Path]:
    """Every file a check's result depends on, besides the learner's own."""
    files = sorted((ROOT / "checks").rglob("*.py"))  # the checker, with its specs
    files += sorted((ROOT / "solutions").glob("*.py"))
    files += sorted((ROOT / "gpt2").glob("*.py"))  # the plumbing steps 11-14 import
    files += sorted(p for p in DATA.rglob("*") if p.is_file())  # what the checks read
    files.append(MANIFEST)
    return files


def digest(files: Iterable[Path], extra: str = "") -> str:
    """One SHA-256 over the names and contents of ``files`` (a missing one counts too),
    MAX's version and ``extra``."""
    h = hashlib.sha256()
    for path in files:
        path = Path(path)
        try:
            h.update(str(path.resolve().relative_to(ROOT)).encode())
        except ValueError:
            h.update(str(path).encode())
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"<missing>")
    h.update(f"|{max_version()}|{extra}".encode())
    return h.hexdigest()


def fingerprint(file: Path, device: str) -> str:
    """The digest of one check: the learner's ``file`` on ``device`` ("cpu" or "gpu")."""
    return digest([Path(file), *course_files()], extra=device)


def fresh_result(number: int, device: str) -> Stored | None:
    """The stored result of step ``number`` if it is for these very files on ``device``."""
    stored = load_results().get(number)
    path = step_file(number)
    if stored is None or not path.exists():
        return None
    return stored if stored.fingerprint == fingerprint(path, device) else None


def passing(candidates: Iterable[int], devices=("cpu", "gpu")) -> list[int]:
    """Of ``candidates``, the steps whose learner file passed its check, on any device."""
    return [
        n
        for n in candidates
        if any((s := fresh_result(n, d)) is not None and s.status == PASSED for d in devices)
    ]


# --------------------------------------------------------------------------- --mine


class LearnerSteps(importlib.abc.MetaPathFinder):
    """Imports ``solutions.solution_NN`` from ``steps/step_NN.py`` for the chosen steps.

    A step file imports the earlier steps from ``solutions``; with this finder in front of
    Python's own (``sys.meta_path``, Python's documented way to extend imports), the learner's
    passing files stand in for those references, the lowest step first, in every process
    that installs it (``python -m gpt2 --mine``, and MAX's model worker for ``serve --mine``).
    It must be installed before any of those modules is imported.
    """

    def __init__(self, chosen: Iterable[int]) -> None:
        self.files = {f"solutions.solution_{n:02d}": step_file(n) for n in chosen}

    def find_spec(self, fullname, path=None, target=None):
        file = self.files.get(fullname)
        if file is None:
            return None
        return importlib.util.spec_from_file_location(fullname, file)

    def install(self) -> LearnerSteps:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        return self
