"""Shared helpers: run reference modules through MAX exactly as the checker does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
# No background warm-up from the checks the tests run: it would compete for the cores (the
# tests of the warm-up itself turn it back on). MAX then compiles each kernel on first use.
os.environ.setdefault("GPT2_CHECKS_WARMUP", "0")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from checks import warmup  # noqa: E402
from gpt2 import runtime  # noqa: E402

runtime.quiet_max()
warmup.use_course_kernels()  # as a check's process does: the warm-up's kernels, once ready


@pytest.fixture(scope="session")
def cpu():
    return runtime.pick_device("cpu")


def compile_and_run(
    module, weights: dict[str, np.ndarray], inputs: list[np.ndarray], dims, target, dtype=None
):
    """Compile ``module`` (built lazily) with ``weights`` and run it on each input array."""
    dtype = dtype or target.dtype
    compiled = runtime.compile_module(
        module, [runtime.tensor_type(target, dtype, dims)], weights, target
    )
    return [runtime.to_numpy(compiled(runtime.to_tensor(x, target))) for x in inputs]
