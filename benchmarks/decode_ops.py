"""What one decode step costs, op by op: the measurements behind step 13's chapter.

    python benchmarks/decode_ops.py [--repeats 40]

A decode step works on one row. Three of its operations can be written two ways that
compute the same numbers; each pair is compiled with MAX (CPU, float32) and timed:

* a weight matrix times one row, for GPT-2 small's shapes: ``x @ Wᵀ`` (as ``Linear``
  writes it) against ``(W @ xᵀ)ᵀ``, with NumPy as a yardstick. Each graph multiplies by
  eight different matrices, so that the weights come from memory, not from the CPU cache;
* one new position appended to a cache of 12 layers' keys ``[12, 1, 12, P, 64]``:
  ``F.concat`` on the position axis against the same bytes concatenated on axis 0;
* one query against P cached keys in 12 layers: ``q @ Kᵀ`` against ``(K @ qᵀ)ᵀ``;

and, for scale, one whole decode step of step 13's cached GPT-2 small (random weights)
after P cached positions.

Every graph is new to MAX on a first run: expect several minutes of compiling (the
graphs are stored, so a second run starts in seconds). Times are medians per call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N_MATRICES = 8  # distinct matrices per graph: more bytes than any CPU cache holds
N_LAYER, N_HEAD, HEAD_DIM = 12, 12, 64
CACHE_LENGTHS = (16, 80, 270)


def median_ms(repeats: int, fn, *args) -> float:
    """Median milliseconds of ``fn(*args)``."""
    for _ in range(3):
        fn(*args)  # warm-up: first calls allocate
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def compiled(forward, *input_types, weights: dict | None = None):
    """``forward`` as the body of a MAX module, compiled for ``input_types``."""
    from max.experimental import functional as F
    from max.experimental.nn import Module
    from max.experimental.tensor import Tensor

    class Probe(Module):
        def __init__(self):
            for name, array in (weights or {}).items():
                setattr(self, name, Tensor.zeros(list(array.shape)))

        def forward(self, *inputs):
            return forward(self, *inputs)

    with F.lazy():
        probe = Probe()
    if weights:
        probe.load_state_dict(weights)
    return probe.compile(*input_types)


def matrix_times_row(repeats: int) -> list[tuple[str, str, float]]:
    from max.driver import CPU
    from max.dtype import DType
    from max.experimental.tensor import Tensor, TensorType

    rows = []
    rng = np.random.default_rng(0)
    for n_in, n_out, what in [
        (768, 3072, "mlp.c_fc"),
        (3072, 768, "mlp.c_proj"),
        (768, 2304, "attn.c_attn"),
        (768, 50257, "lm_head"),
    ]:
        count = 2 if what == "lm_head" else N_MATRICES  # lm_head alone is 154 MB
        weights = {
            f"w{i}": rng.standard_normal((n_out, n_in), dtype=np.float32) for i in range(count)
        }
        x = np.ones((1, n_in), dtype=np.float32)
        shape = f"{n_out}×{n_in} ({what})"
        matrices = list(weights.values())
        numpy_ms = median_ms(repeats, lambda: [x @ w.T for w in matrices])  # noqa: B023
        rows.append((shape, "NumPy x @ Wᵀ", numpy_ms / count))
        row_type = TensorType(DType.float32, [1, n_in], device=CPU())
        x_tensor = Tensor.from_dlpack(x)
        names = list(weights)
        ways = {
            "MAX x @ Wᵀ": lambda m, x, names=names: [x @ getattr(m, n).T for n in names],
            "MAX (W @ xᵀ)ᵀ": lambda m, x, names=names: [(getattr(m, n) @ x.T).T for n in names],
        }
        for label, forward in ways.items():
            graph = compiled(forward, row_type, weights=weights)
            rows.append((shape, label, median_ms(repeats, graph, x_tensor) / count))
    return rows


def cache_ops(repeats: int) -> list[tuple[str, str, float]]:
    from max.driver import CPU
    from max.dtype import DType
    from max.experimental import functional as F
    from max.experimental.tensor import Tensor, TensorType

    cache_type = TensorType(DType.float32, [N_LAYER, 1, N_HEAD, "P", HEAD_DIM], device=CPU())
    new_type = TensorType(DType.float32, [N_LAYER, 1, N_HEAD, 1, HEAD_DIM], device=CPU())
    ways = {
        ("append one position", "concat on the position axis"): lambda m, keys, new: F.concat(
            [keys, new], axis=3
        ),
        ("append one position", "concat on axis 0, same bytes"): lambda m, keys, new: F.concat(
            [keys.reshape([-1, HEAD_DIM]), new.reshape([-1, HEAD_DIM])], axis=0
        ),
        ("query against the keys", "q @ Kᵀ"): lambda m, keys, new: [
            new[i] @ keys[i].transpose(-1, -2) for i in range(N_LAYER)
        ],
        ("query against the keys", "(K @ qᵀ)ᵀ"): lambda m, keys, new: [
            (keys[i] @ new[i].transpose(-1, -2)).transpose(-1, -2) for i in range(N_LAYER)
        ],
    }
    rng = np.random.default_rng(1)
    new = Tensor.from_dlpack(
        rng.standard_normal((N_LAYER, 1, N_HEAD, 1, HEAD_DIM), dtype=np.float32)
    )
    rows = []
    for (what, label), forward in ways.items():
        graph = compiled(forward, cache_type, new_type)
        for past in CACHE_LENGTHS:
            keys = Tensor.from_dlpack(
                rng.standard_normal((N_LAYER, 1, N_HEAD, past, HEAD_DIM), dtype=np.float32)
            )
            rows.append((f"{what}, P = {past}", label, median_ms(repeats, graph, keys, new)))
    return rows


def decode_steps(repeats: int) -> list[tuple[str, str, float]]:
    from checks import engine, runtime
    from solutions.solution_01 import GPT2Config
    from solutions.solution_11 import build_model
    from solutions.solution_13 import cached_function, empty_cache

    model = build_model(GPT2Config(), runtime.pick_device("cpu").device)
    # The checker's seeded weights, one value per tied tensor (lm_head is wte).
    model.load_state_dict(engine._tied(engine._weights(engine._shapes(model), seed=2), model))
    run = cached_function(model)
    rows = []
    for past in CACHE_LENGTHS:
        _, cache = run(list(range(past)), empty_cache(model))  # a prefill of P tokens
        rows.append(
            (
                f"decode step, P = {past}",
                "step 13, GPT-2 small",
                median_ms(repeats, run, [5], cache),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args(argv)

    from checks import runtime

    runtime.quiet_max()
    runtime.cache_every_compile(runtime.pick_device("cpu"))
    print("compiling and timing (a first run compiles for minutes)…", flush=True)
    rows = matrix_times_row(args.repeats) + cache_ops(args.repeats) + decode_steps(args.repeats)
    width = max(len(shape) for shape, _, _ in rows)
    for shape, label, ms in rows:
        print(f"{shape:<{width}}  {label:<30} {ms:7.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
