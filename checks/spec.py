"""The vocabulary of a step's check: what a spec in ``checks/specs/step_NN.py`` declares.

A spec says *what* to check; ``checks.engine`` knows *how*. Two kinds exist:

* ``ModuleStep``: the step defines a MAX ``Module``. The engine builds the learner's and the
  reference's module with the same small config, gives both the same weights, compiles both
  with ``Module.compile`` and compares their outputs on seeded inputs.
* ``ValueStep``: the step defines a config or a function. The engine compares the values the
  learner's code returns with the expected values, case by case.

Each spec lists ``mistakes``: wrong versions built *from the reference*. When the learner's
numbers match one of them instead of the reference, the check names that mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# The one small config every module check uses. Keeping it identical across steps lets
# MAX reuse the kernels it compiled for one step in the next.
SMALL_CONFIG = dict(
    vocab_size=97,
    n_positions=40,
    n_embd=48,
    n_layer=2,
    n_head=4,
    n_inner=None,
    layer_norm_epsilon=1e-5,
)


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer and the hint to give when the learner's output matches it.

    ``variant`` builds the wrong version from the reference: for a ``ModuleStep`` it takes
    the reference class and returns a subclass; for a ``ValueStep`` it takes
    ``(reference_value, case)`` and returns the wrong value. Alternatively ``detect`` takes
    ``(learner_value, reference_value)`` for mistakes that have no single wrong value.
    """

    name: str
    hint: str
    variant: Callable[..., Any] | None = None
    detect: Callable[[Any, Any], bool] | None = None
    # The source of a learner file that makes this mistake. The meta-test checks every such
    # file gets this hint; module steps need none, their ``variant`` is the example.
    example: str = ""
    # MAX's compiler is known to produce this mistake's numbers from correct code (see the
    # pitfalls in the book): run the learner's module eagerly before blaming them.
    compiler_lookalike: bool = False


@dataclass(frozen=True)
class Case:
    """One input to a module: its axes, and the sizes of the axes that are not config fields.

    Axes named after a config field (``n_embd``) are fixed in the compiled graph; the others
    (``batch``, ``seq``) stay symbolic, so one compiled graph serves every case of that rank.
    """

    dims: tuple[str, ...]
    sizes: dict[str, int]
    kind: str = "float"  # float | ids | positions

    def shape(self, config) -> tuple[int, ...]:
        return tuple(self.sizes[d] if d in self.sizes else getattr(config, d) for d in self.dims)

    def symbolic(self, config) -> list[Any]:
        return [d if d in self.sizes else getattr(config, d) for d in self.dims]

    def describe(self, config) -> str:
        return "[" + ", ".join(f"{d}={n}" for d, n in zip(self.dims, self.shape(config), strict=True)) + "]"



# Token ids [batch, seq] in two shapes, the second with one token: the input of every module
# that starts from ids (embeddings, the stack, the whole model).
TOKEN_ID_CASES = (
    Case(("batch", "seq"), {"batch": 2, "seq": 7}, kind="ids"),
    Case(("batch", "seq"), {"batch": 3, "seq": 1}, kind="ids"),
)

@dataclass(frozen=True)
class ModuleStep:
    number: int
    title: str
    name: str  # the public class to build
    public: tuple[str, ...]
    build: Callable[[type, Any], Any]  # (class, config) -> module
    cases: Sequence[Case]
    mistakes: Sequence[Mistake] = ()
    config: dict[str, Any] = field(default_factory=lambda: dict(SMALL_CONFIG))
    hint: str = ""  # said when the numbers are wrong and no known mistake matches
    tolerance: float = 1.0  # multiplies the device's default tolerances

    kind = "module"


@dataclass(frozen=True)
class ValueStep:
    number: int
    title: str
    public: tuple[str, ...]
    cases: Sequence[Any]
    evaluate: Callable[[Any, Any, Any], Any]  # (namespace, case, target) -> value
    compare: Callable[[Any, Any], tuple[bool, str]]  # (actual, expected) -> (ok, detail)
    describe: Callable[[Any], str] = str  # case -> label
    expected: Callable[[Any, Any], Any] | None = None  # (case, reference value) -> expected
    mistakes: Sequence[Mistake] = ()
    hint: str = ""

    kind = "value"


def solution_with(number: int, old: str, new: str) -> str:
    """The reference file of step ``number`` with one piece of text replaced: a mistake's example."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "solutions" / f"solution_{number:02d}.py"
    text = path.read_text()
    if old not in text:
        raise ValueError(f"{old!r} is not in {path.name}")
    return text.replace(old, new, 1)
