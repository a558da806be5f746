"""The steps of the course: the manifest (``course.toml``) says which, a spec says how to check.

``numbers()`` and every step's title and public names come from the manifest; each step's
check is declared in ``checks/specs/step_NN.py`` (its ``SPEC``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import re

from checks import manifest


def numbers() -> list[int]:
    return manifest.numbers()


@functools.cache
def spec(number: int):
    """Step ``number``'s spec, with its title and public names from the manifest."""
    declared = importlib.import_module(f"checks.specs.step_{number:02d}").SPEC
    entry = manifest.step(number)
    return dataclasses.replace(declared, title=entry.title, public=entry.names)


def all_specs() -> list:
    return [spec(n) for n in numbers()]


def parse_step(text: str) -> int | None:
    """'6', '06', 's06', 'step_06' -> 6; anything else -> None."""
    m = re.fullmatch(r"(?:s|step_?)?(\d{1,2})", text.strip().lower())
    return int(m.group(1)) if m else None
