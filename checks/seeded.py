"""Seeded weights and inputs: the numbers every check gives the learner's module and the
reference alike, for scripts, benchmarks and tests to use the same way.

Nothing symmetric to hide behind: no zeros, no ones, a different scale per feature. Nothing
here imports MAX at import time.
"""

from __future__ import annotations

import numpy as np

from checks.spec import Case


def weights(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """Seeded, non-uniform weights: no zeros, no ones, nothing symmetric to hide behind."""
    rng = np.random.default_rng(seed)
    found = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if len(shape) == 1 and name.endswith("weight"):  # a norm's gain
            value = 1.0 + 0.3 * rng.standard_normal(shape)
        elif len(shape) == 1:  # a bias
            value = 0.05 + 0.2 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape) * (1.2 / np.sqrt(shape[-1])) + 0.01
        found[name] = value.astype(np.float32)
    return found


def inputs(case: Case, config, rng: np.random.Generator) -> np.ndarray:
    shape = case.shape(config)
    if case.kind == "ids":
        return rng.integers(0, config.vocab_size, size=shape, dtype=np.int64)
    if case.kind == "positions":
        return rng.integers(0, config.n_positions, size=shape, dtype=np.int64)
    # Non-uniform on purpose: a different scale per feature and a shifted mean.
    scale = rng.uniform(0.5, 2.0, size=shape[-1:])
    return (rng.normal(0.3, 1.0, size=shape) * scale).astype(np.float32)


def shapes(module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(int(d) for d in t.shape) for name, t in module.parameters}


def tied(values: dict[str, np.ndarray], module) -> dict[str, np.ndarray]:
    """``values`` with one value for every group of names that share one tensor.

    A tied tensor (step 10's lm_head.weight *is* transformer.wte.weight) is listed under
    each of its names, but a compiled graph holds it once, under whichever name comes
    first. Giving the whole group one value makes that order irrelevant, while a module
    that keeps two separate tensors still gets two different values.
    """
    groups: dict[int, list[str]] = {}
    for name, tensor in module.parameters:
        groups.setdefault(id(tensor), []).append(name)
    result = dict(values)
    for names in groups.values():
        source = min(names)
        if len(names) > 1 and source in values:
            result.update({name: values[source] for name in names})
    return result
