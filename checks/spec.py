"""The vocabulary of a step's check: what a spec in ``checks/specs/step_NN.py`` declares.

A spec says *what* to check; ``checks.engine`` knows *how*. Three kinds exist:

* ``ModuleStep``: the step defines a MAX ``Module``. The engine builds the learner's and the
  reference's module with the same small config, gives both the same weights, compiles both
  with ``Module.compile`` and compares their outputs on seeded inputs.
* ``ValueStep``: the step defines a config or a function. The engine compares the values the
  learner's code returns with the expected values, case by case.
* ``GenerationStep``: the step generates text with a model (steps 12-13). The engine loads
  the tiny GPT-2 once and hands every function of the spec one ``GenerationContext``.

Each spec lists ``mistakes``: wrong versions built *from the reference*. When the learner's
numbers match one of them instead of the reference, the check names that mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# The one small config every module check uses. Keeping it identical across steps lets
# MAX reuse the kernels it compiled for one step in the next. Every field differs from GPT-2
# small's and matters: a module that ignores one (uses GPT-2's value instead, say 4 · n_embd
# for n_inner, or eps 1e-5) computes other numbers or has other parameters.
SMALL_CONFIG = dict(
    vocab_size=97,
    n_positions=40,
    n_embd=48,
    n_layer=2,
    n_head=4,
    n_inner=80,
    layer_norm_epsilon=1e-3,
)
# Other configs a module must be built with, giving the reference's parameters: the checks
# compare names and shapes under each (no compile). GPT-2 itself has no n_inner (None: the
# MLP is 4 · n_embd wide).
OTHER_CONFIGS = ({"n_inner": None},)


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
    # A learner file that makes this mistake: its source, or a function that returns it (read
    # when the meta-test asks, never when the spec is imported). The meta-test checks every
    # such file gets this hint; module steps need none, their ``variant`` is the example.
    example: str | Callable[[], str] = ""
    # MAX's compiler is known to produce this mistake's numbers from correct code (see the
    # pitfalls in the book): run the learner's module eagerly before blaming them.
    compiler_lookalike: bool = False

    def example_source(self) -> str:
        return self.example() if callable(self.example) else self.example


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
        return (
            "["
            + ", ".join(f"{d}={n}" for d, n in zip(self.dims, self.shape(config), strict=True))
            + "]"
        )


# Token ids [batch, seq] in two shapes, the second with one token: the input of every module
# that starts from ids (embeddings, the stack, the whole model).
TOKEN_ID_CASES = (
    Case(("batch", "seq"), {"batch": 2, "seq": 7}, kind="ids"),
    Case(("batch", "seq"), {"batch": 3, "seq": 1}, kind="ids"),
)


@dataclass(frozen=True)
class ModuleStep:
    number: int
    name: str  # the public class to build
    build: Callable[[type, Any], Any]  # (class, config) -> module
    cases: Sequence[Case]
    mistakes: Sequence[Mistake] = ()
    config: dict[str, Any] = field(default_factory=lambda: dict(SMALL_CONFIG))
    other_configs: Sequence[dict[str, Any]] = OTHER_CONFIGS  # built too: parameters compared
    hint: str = ""  # said when the numbers are wrong and no known mistake matches
    tolerance: float = 1.0  # multiplies the device's default tolerances
    title: str = ""  # from the manifest (checks.registry fills it in)
    public: tuple[str, ...] = ()  # from the manifest

    kind = "module"


@dataclass(frozen=True)
class ValueStep:
    number: int
    cases: Sequence[Any]
    evaluate: Callable[[Any, Any, Any], Any]  # (namespace, case, target) -> value
    compare: Callable[[Any, Any], tuple[bool, str]]  # (actual, expected) -> (ok, detail)
    describe: Callable[[Any], str] = str  # case -> label
    expected: Callable[[Any, Any], Any] | None = None  # (case, reference value) -> expected
    mistakes: Sequence[Mistake] = ()
    hint: str = ""
    title: str = ""  # from the manifest (checks.registry fills it in)
    public: tuple[str, ...] = ()  # from the manifest

    kind = "value"


def solution_with(number: int, old: str, new: str, *more: tuple[str, str]) -> Callable[[], str]:
    """A mistake's example: the reference file of step ``number`` with ``old`` replaced by
    ``new`` (and each further ``(old, new)`` pair), read when it is asked for, so that no
    check depends on the solution's text."""

    def source() -> str:
        from checks import paths

        path = paths.solution_file(number)
        text = path.read_text()
        for before, after in ((old, new), *more):
            if before not in text:
                raise ValueError(f"{before!r} is not in {path.name}: update this example")
            text = text.replace(before, after, 1)
        return text

    return source


@dataclass(frozen=True)
class GenerationContext:
    """What a generation check works with: where it runs, on which model, how close logits
    must agree. One per check, handed to the spec's functions and its mistakes."""

    target: Any  # runtime.Target
    model: Any  # the tiny GPT-2, loaded by the reference's load_pretrained
    atol: float = 1e-4
    rtol: float = 1e-4


@dataclass(frozen=True)
class GenerationStep:
    number: int
    cases: Sequence[Any]
    run: Callable[[Any, Any, GenerationContext], Any]  # (learner's namespace, case, ctx)
    expected: Callable[[Any, GenerationContext], Any]  # (case, ctx) -> what is expected
    compare: Callable[[Any, Any], tuple[bool, str]]  # (actual, expected) -> (ok, detail)
    describe: Callable[[Any], str] = str  # case -> label
    # Each known mistake: ``detect(actual, expected)``, or ``variant(case, ctx)``, the answer
    # the mistake gives (the reference with the mistake built in).
    mistakes: Sequence[Mistake] = ()
    hint: str = ""
    title: str = ""  # from the manifest (checks.registry fills it in)
    public: tuple[str, ...] = ()  # from the manifest
    # Called when the check ends, passed or not (step 14 stops the server it started).
    finish: Callable[[], None] | None = None
    # The check starts a server: a minute or more, most of it MAX compiling (tests mark slow).
    starts_server: bool = False

    kind = "generation"
