"""Module steps: build a MAX ``Module`` with the checks' small config, give it the same seeded
weights as the reference, and run it on seeded inputs.

The module runs on MAX's eager interpreter: its ``forward`` is traced into one lazy graph per
input, which the interpreter executes op by op on kernels compiled once per machine. No
graph is compiled, so an edited module answers in seconds. Before any number, the
parameters' names and shapes are compared with the reference's (HuggingFace's names are part
of the contract), under the small config and under each of ``other_configs``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from checks import seeded
from checks.learner import Problem
from checks.results import Item
from gpt2 import runtime

DTYPE_HINT = (
    "Keep the output in the input's dtype (float32 here): a .cast() in forward, or a "
    "constant made with another dtype, changes it."
)
ONE_OBJECT_TWICE = (
    "Two parameters that must be separate are one and the same tensor: the same module "
    "object was put in two places (a list of one block repeated n times holds that block n "
    "times). Build a new one for each place."
)
NAMES_HINT = (
    "Parameter names follow HuggingFace's GPT-2 so that real weights load later; keep the "
    "attribute names the skeleton asks for."
)
N_INNER_HINT = (
    "GPT-2's own config has n_inner = None, which means an MLP 4 · n_embd wide: use "
    "config.n_inner when it is set, and 4 · n_embd when it is None."
)


def config_of(ctx, overrides=None):
    from solutions.solution_01 import GPT2Config

    config = GPT2Config(**ctx.spec.module.config)
    return dataclasses.replace(config, **overrides) if overrides else config


def _build(ns, ctx, config, label: str = ""):
    how = ctx.spec.module
    with ctx.guard(f"building {how.name}{label}"), runtime.building(ctx.target):
        return how.build(getattr(ns, how.name), config)


def _input(case, ctx) -> np.ndarray:
    """The seeded input of ``case``: one generator per step, drawn in the cases' order."""
    if "inputs" not in ctx.memo:
        rng = np.random.default_rng(ctx.number)
        config = config_of(ctx)
        ctx.memo["inputs"] = {id(c): seeded.inputs(c, config, rng) for c in ctx.spec.cases}
    return ctx.memo["inputs"][id(case)]


def built(ns, ctx):
    """``ns``'s module, built once per check and holding the seeded weights."""
    key = ("module", id(ns))
    if key not in ctx.memo:
        name = ctx.spec.module.name
        module = _build(ns, ctx, config_of(ctx))
        weights = seeded.weights(seeded.shapes(module), seed=1000 + ctx.number)
        with ctx.guard(f"loading weights into {name}"):
            module.load_state_dict(seeded.tied(weights, module))
        ctx.memo[key] = module
    return ctx.memo[key]


def run_module(ns, case, ctx) -> np.ndarray:
    """The output of ``ns``'s module on ``case``'s seeded input, as a NumPy array."""
    name = ctx.spec.module.name
    module = built(ns, ctx)
    x = runtime.to_tensor(_input(case, ctx), ctx.target)
    with ctx.guard(f"tracing {name}.forward"), runtime.building(ctx.target):
        out = module(x)  # one lazy graph, nothing computed yet
    if isinstance(out, (tuple, list)):
        raise Problem("output", f"{name}.forward returned {len(out)} values; expected one tensor.")
    with ctx.guard(f"running {name} on input {case.describe(config_of(ctx))}"):
        try:
            runtime.numpy_dtype(out.dtype)
        except (ValueError, TypeError, AttributeError):  # bfloat16 and friends: no NumPy dtype
            raise Problem(
                "output",
                f"{name}.forward returned a {str(out.dtype).split('.')[-1]} tensor.",
                DTYPE_HINT,
            ) from None
        return runtime.to_numpy(out)  # the interpreter runs the graph here


def parameters_agree(ns, ctx, report) -> bool:
    """Names and shapes of the parameters, as the reference's, under every config; no tensor
    shared that the reference keeps apart. Adds what it finds to ``report``."""
    from max.experimental.nn import Module

    from checks.engine import reference_module

    how = ctx.spec.module
    mine = getattr(ns, how.name)
    if not (isinstance(mine, type) and issubclass(mine, Module)):
        raise Problem(
            "missing",
            f"{how.name} in {ctx.learner} is not a MAX Module.",
            f"Declare it as `class {how.name}(Module):` with Module from "
            "max.experimental.nn, as the skeleton does.",
        )
    ref_ctx = ctx.reference()
    reference = reference_module(ctx.number)
    for overrides in ({}, *how.other_configs):
        label = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
        config = config_of(ctx, overrides)
        mine = _build(ns, ctx, config, f" with {label}" if label else "")
        ref_shapes = seeded.shapes(_build(reference, ref_ctx, config))
        with ctx.guard(f"listing the parameters of {how.name}"):
            mine_shapes = seeded.shapes(mine)
        items = _parameter_items(mine_shapes, ref_shapes)
        if not overrides:
            report.items += items
        if mine_shapes != ref_shapes:
            if overrides:
                report.items += [
                    Item(False, f"with {label}: {i.label}", i.detail) for i in items if not i.ok
                ]
            report.hints.append(N_INNER_HINT if "n_inner" in overrides else NAMES_HINT)
            return False
        if not overrides:
            shared = _shared_tensors(mine, _build(reference, ref_ctx, config))
            if shared:
                report.items.append(Item(False, "one tensor under two names", shared))
                report.hints.append(ONE_OBJECT_TWICE)
                return False
    return True


def _parameter_items(mine: dict, ref: dict) -> list[Item]:
    missing = [n for n in ref if n not in mine]
    extra = [n for n in mine if n not in ref]
    shaped = [n for n in ref if n in mine and mine[n] != ref[n]]
    if not (missing or extra or shaped):
        return [Item(True, "parameters", ", ".join(f"{n} {list(s)}" for n, s in ref.items()))]
    return (
        [Item(False, f"missing parameter {n}", f"expected shape {list(ref[n])}") for n in missing]
        + [Item(False, f"unexpected parameter {n}", f"shape {list(mine[n])}") for n in extra]
        + [
            Item(False, f"parameter {n}", f"shape {list(mine[n])}, expected {list(ref[n])}")
            for n in shaped
        ]
    )


def _shared_tensors(mine, ref) -> str:
    """Names that share one tensor in the learner's module but not in the reference's."""

    def groups(module) -> list[tuple[str, ...]]:
        by_tensor: dict[int, list[str]] = {}
        for name, tensor in module.parameters:
            by_tensor.setdefault(id(tensor), []).append(name)
        return [tuple(sorted(names)) for names in by_tensor.values() if len(names) > 1]

    allowed = set(groups(ref))
    for names in groups(mine):
        if names not in allowed:
            return (
                ", ".join(names[:3])
                + (", …" if len(names) > 3 else "")
                + " are the very same tensor"
            )
    return ""
