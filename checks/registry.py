"""Which steps exist: one spec module per step in ``checks/specs/step_NN.py``."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

SPECS_DIR = Path(__file__).parent / "specs"


def numbers() -> list[int]:
    found = (re.fullmatch(r"step_(\d\d)\.py", p.name) for p in SPECS_DIR.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def spec(number: int):
    return importlib.import_module(f"checks.specs.step_{number:02d}").SPEC


def all_specs() -> list:
    return [spec(n) for n in numbers()]


def parse_step(text: str) -> int | None:
    """'6', '06', 's06', 'step_06' -> 6; anything else -> None."""
    m = re.fullmatch(r"(?:s|step_?)?(\d{1,2})", text.strip().lower())
    return int(m.group(1)) if m else None
