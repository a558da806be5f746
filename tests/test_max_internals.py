"""MAX's private names live in one module, and a MAX release that moves one is named here.

``gpt2/max_internals.py`` lists every private MAX name the course touches (``INTERNALS``),
with why no public API serves. These tests resolve each one against the installed MAX, and
hold the rest of the code to the rule: no other module imports a private MAX name or puts a
learner's file in place of a step's module in ``sys.modules``, and the runtime (``gpt2``)
imports nothing from its tests (``checks``).
"""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest

from gpt2 import max_internals
from gpt2.course import ROOT

CODE = [
    p
    for folder in ("checks", "gpt2", "solutions", "steps", "benchmarks", "scripts")
    for p in sorted((ROOT / folder).rglob("*.py"))
]
PRIVATE_IMPORT = re.compile(
    r"^\s*(?:from\s+max(?:\.\w+)*\._\w*|import\s+max(?:\.\w+)*\._\w*"
    r"|from\s+max(?:\.\w+)*\s+import\s+\(?\s*(?:[\w ]+,\s*)*_[a-z]\w*)",
    re.M,
)
PRIVATE_ATTRIBUTE = re.compile(r"\._graph_value\b|\._SESSION\b|\._module\b|\bsupport\._")


@pytest.mark.parametrize("internal", max_internals.INTERNALS, ids=lambda i: i.name)
def test_every_private_name_is_still_where_it_was(internal):
    try:
        max_internals.resolve(internal)
    except (ImportError, AttributeError) as exc:
        pytest.fail(
            f"MAX {version('max')} moved {internal.name} (checked on MAX "
            f"{max_internals.CHECKED_ON}; the course uses it: {internal.use}): {exc}"
        )


def test_the_list_says_which_moved():
    assert max_internals.moved() == []


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_other_module_touches_a_private_max_name(path):
    if path == ROOT / "gpt2" / "max_internals.py":
        return
    text = path.read_text()
    found = PRIVATE_IMPORT.findall(text) + PRIVATE_ATTRIBUTE.findall(text)
    assert not found, f"{path.relative_to(ROOT)}: {found}: add it to gpt2/max_internals.py"
    assert not re.search(r"sys\.modules\[[^\]]*solution[^\]]*\]\s*=", text), (
        f"{path.relative_to(ROOT)} replaces a step's module in sys.modules"
    )


def test_the_private_name_detector_detects_them():
    assert PRIVATE_IMPORT.search("from max._core import Operation\n")
    assert PRIVATE_IMPORT.search("    from max.serve.api_server import _handler\n")
    assert PRIVATE_ATTRIBUTE.search("x._graph_value")
    assert not PRIVATE_IMPORT.search("from max.experimental import functional as F\n")
    assert not PRIVATE_IMPORT.search("from max.nn.kernels import store_v as _store_v\n")


def test_the_runtime_imports_nothing_from_its_tests():
    for path in sorted((ROOT / "gpt2").glob("*.py")):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+checks\b", text, re.M), path.name
