"""What one decode step costs, op by op: the measurements behind step 13's chapter.

    python benchmarks/decode_ops.py [--repeats 40] [--json book/data/decode-ops-cpu.json]

A decode step works on one row. Three of its operations can be written two ways that
compute the same numbers; each pair is compiled with MAX (CPU, float32) and timed:

* a weight matrix times one row, for GPT-2 small's shapes: ``x @ Wᵀ`` (as ``Linear``
  writes it) against ``(W @ xᵀ)ᵀ`` and against ``(W * x).sum(-1)`` (a product per weight,
  summed per row of W), with NumPy as a yardstick. Each graph multiplies by eight different
  matrices, so that the weights come from memory, not from the CPU cache;
* all 49 weight matrices of GPT-2 small (the 48 of the blocks, then ``lm_head``) times one
  row, NumPy against MAX in both orders: the matrix products of one decode step, and
  nothing else;
* one new position appended to a cache of 12 layers' keys ``[12, 1, 12, P, 64]``:
  ``F.concat`` on the position axis against the same bytes concatenated on axis 0;
* one query against P cached keys in 12 layers: ``q @ Kᵀ`` against ``(K @ qᵀ)ᵀ``;

and, for scale, one whole decode step of step 13's cached GPT-2 small (random weights)
after P cached positions, next to the same step rewritten to copy as little as possible
(each layer's cache its own input, the append as a 2-D concat, the scores as
``(K @ qᵀ)ᵀ``), which must give the same logits.

Every graph is new to MAX on a first run: expect several minutes of compiling (the
graphs are stored, so a second run starts in seconds). Times are medians per call, with
the quartiles of the calls (``--json`` writes them all: step 13's chapter quotes that file).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
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

# One row x [1, in] times a weight matrix W [out, in], three ways to the same numbers.
ONE_ROW_PRODUCTS = {
    "MAX x @ Wᵀ": lambda w, x: x @ w.T,  # as Linear writes it
    "MAX (W @ xᵀ)ᵀ": lambda w, x: (w @ x.T).T,
    "MAX (W * x).sum(-1)": lambda w, x: (w * x).sum(axis=-1).reshape([1, -1]),
}


def median_ms(repeats: int, fn, *args, per: int = 1) -> dict:
    """Milliseconds of ``fn(*args)`` divided by ``per``: the median and the quartiles."""
    for _ in range(3):
        fn(*args)  # warm-up: first calls allocate
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - started) * 1e3 / per)
    q1, median, q3 = statistics.quantiles(times, n=4)
    return {"ms": median, "q1_ms": q1, "q3_ms": q3}


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


def matrix_times_row(repeats: int) -> list[tuple[str, str, dict]]:
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
        numpy_ms = median_ms(repeats, lambda: [x @ w.T for w in matrices], per=count)  # noqa: B023
        rows.append((shape, "NumPy x @ Wᵀ", numpy_ms))
        row_type = TensorType(DType.float32, [1, n_in], device=CPU())
        x_tensor = Tensor.from_dlpack(x)
        names = list(weights)
        for label, product in ONE_ROW_PRODUCTS.items():

            def forward(m, x, names=names, product=product):
                return [product(getattr(m, n), x) for n in names]

            graph = compiled(forward, row_type, weights=weights)
            rows.append((shape, label, median_ms(repeats, graph, x_tensor, per=count)))
    return rows


def all_matrices(repeats: int) -> list[tuple[str, str, dict]]:
    """One row times every weight matrix of GPT-2 small: a decode step's matrix products."""
    from max.driver import CPU
    from max.dtype import DType
    from max.experimental.tensor import Tensor, TensorType

    n_embd, vocab = 768, 50257
    rng = np.random.default_rng(3)
    shapes = {}
    for layer in range(N_LAYER):
        shapes[f"c_attn{layer}"] = (3 * n_embd, n_embd)
        shapes[f"attn_proj{layer}"] = (n_embd, n_embd)
        shapes[f"c_fc{layer}"] = (4 * n_embd, n_embd)
        shapes[f"mlp_proj{layer}"] = (n_embd, 4 * n_embd)
    shapes["lm_head"] = (vocab, n_embd)
    weights = {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in shapes.items()}
    rows_by_width = {  # the row each matrix multiplies: 3072 wide for mlp.c_proj
        width: rng.standard_normal((1, width), dtype=np.float32) for width in (n_embd, 4 * n_embd)
    }
    what = f"all {len(weights)} matrices ({sum(w.nbytes for w in weights.values()) / 1e6:.0f} MB)"
    numpy_ms = median_ms(
        repeats, lambda: [rows_by_width[w.shape[1]] @ w.T for w in weights.values()]
    )
    rows = [(what, "NumPy x @ Wᵀ", numpy_ms)]
    types = [TensorType(DType.float32, [1, width], device=CPU()) for width in rows_by_width]
    tensors = [Tensor.from_dlpack(row) for row in rows_by_width.values()]
    for label in ("MAX x @ Wᵀ", "MAX (W @ xᵀ)ᵀ"):

        def forward(m, *row_inputs, product=ONE_ROW_PRODUCTS[label]):
            by_width = dict(zip(rows_by_width, row_inputs, strict=True))
            return [product(getattr(m, n), by_width[shape[1]]) for n, shape in shapes.items()]

        graph = compiled(forward, *types, weights=weights)
        rows.append((what, label, median_ms(repeats, graph, *tensors)))
    return rows


def cache_ops(repeats: int) -> list[tuple[str, str, dict]]:
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


def copy_free_classes():
    """Step 13's cached model rewritten to copy the cache as little as possible."""
    from max.dtype import DType
    from max.experimental import functional as F

    from solutions import solution_13 as step13

    def append(past, new):
        """``F.concat([past, new], axis=2)`` for [batch, head, positions, dim], as 2-D."""
        batch, heads, positions, dim = past.shape
        flat = [past.reshape([batch * heads, -1]), new.reshape([batch * heads, -1])]
        return F.concat(flat, axis=1).reshape([batch, heads, positions + new.shape[2], dim])

    def attention(base):
        class Attention(base):
            def forward(self, hidden_states, past_key, past_value):
                n_embd = self.n_head * self.head_dim
                q, k, v = F.split(self.c_attn(hidden_states), [n_embd] * 3, axis=-1)
                q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
                key, value = append(past_key, k), append(past_value, v)
                scores = (key @ q.transpose(-1, -2)).transpose(-1, -2)
                scores = scores / math.sqrt(self.head_dim) + step13.mask_with_past(
                    q.shape[2], past_key.shape[2], dtype=scores.dtype, device=scores.device
                )
                out = F.softmax(scores, axis=-1) @ value
                return self.c_proj(self.merge_heads(out)), key, value

        return Attention

    def model(base):
        class Model(base):
            """``forward(ids, k_0 … k_11, v_0 … v_11)``: a cache input per layer, no stack."""

            def forward(self, input_ids, *caches):
                t = self.transformer
                n_layer = len(t.h)
                seq, past_len = input_ids.shape[1], caches[0].shape[2]
                positions = F.arange(
                    past_len, past_len + seq, 1, out_dim=seq, dtype=DType.int64,
                    device=input_ids.device,
                )  # fmt: skip
                hidden_states = t.wte(input_ids) + t.wpe(positions)
                keys, values = [], []
                for i, block in enumerate(t.h):
                    hidden_states, key, value = block(hidden_states, caches[i], caches[n_layer + i])
                    keys.append(key)
                    values.append(value)
                return (self.lm_head(t.ln_f(hidden_states[:, -1])), *keys, *values)

        return Model

    # A fresh copy of the reference, its blocks built with the new attention.
    from checks.learner import load
    from gpt2.course import solution_file

    copy = load(solution_file(13), "_copy_free_13")
    copy.GPT2CachedAttention = attention(copy.GPT2CachedAttention)
    return model(copy.GPT2CachedLMHeadModel)


def decode_steps(repeats: int) -> list[tuple[str, str, dict]]:
    from max.dtype import DType
    from max.experimental.tensor import TensorType

    from checks import seeded
    from gpt2 import runtime
    from gpt2.checkpoint import build
    from gpt2.compiled import to_device, to_host, weights_first
    from solutions.solution_01 import GPT2Config
    from solutions.solution_10 import GPT2LMHeadModel
    from solutions.solution_13 import cached_function, empty_cache

    config = GPT2Config()
    model = build(GPT2LMHeadModel, config, runtime.pick_device("cpu").device)
    # The checker's seeded weights, one value per tied tensor (lm_head is wte).
    model.load_state_dict(seeded.tied(seeded.weights(seeded.shapes(model), seed=2), model))
    run = cached_function(model)

    twin = build(copy_free_classes(), config, model.device)
    weights_first(twin)  # as cached_function does on a CPU
    layer_cache = TensorType(DType.float32, [1, N_HEAD, "past_len", HEAD_DIM], device=model.device)
    ids_type = TensorType(DType.int64, [1, "seq"], device=model.device)
    copy_free = twin.compile(
        ids_type, *[layer_cache] * (2 * N_LAYER), weights=dict(model.parameters)
    )

    def run_copy_free(ids, caches):
        logits, *caches = copy_free(
            to_device(np.asarray([ids], dtype=np.int64), model.device), *caches
        )
        return to_host(logits)[0], caches

    empty = [to_device(np.zeros((1, N_HEAD, 0, HEAD_DIM), np.float32), model.device)] * (
        2 * N_LAYER
    )
    rows = []
    for past in CACHE_LENGTHS:
        prompt = list(range(past))
        _, cache = run(prompt, empty_cache(model))  # a prefill of P tokens
        _, caches = run_copy_free(prompt, empty)
        expected, got = run([5], cache)[0], run_copy_free([5], caches)[0]
        if not np.allclose(got, expected, atol=1e-4, rtol=1e-4):
            raise SystemExit(
                f"the copy-free step differs from step 13 at P = {past}: "
                f"max |Δ| = {np.abs(got - expected).max():.2e}"
            )
        rows.append((f"decode step, P = {past}", "step 13", median_ms(repeats, run, [5], cache)))
        rows.append(
            (
                f"decode step, P = {past}",
                "copy-free rewrite (same logits)",
                median_ms(repeats, run_copy_free, [5], caches),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--json", type=Path, help="write the results here (the book's data)")
    args = parser.parse_args(argv)

    from gpt2 import runtime

    runtime.quiet_max()
    print("compiling and timing (a first run compiles for minutes)…", flush=True)
    rows = (
        matrix_times_row(args.repeats)
        + all_matrices(args.repeats)
        + cache_ops(args.repeats)
        + decode_steps(args.repeats)
    )
    width = max(len(shape) for shape, _, _ in rows)
    for shape, label, t in rows:
        print(
            f"{shape:<{width}}  {label:<31} {t['ms']:7.3f} ms"
            f"  (quartiles {t['q1_ms']:.3f}–{t['q3_ms']:.3f})"
        )
    if args.json:
        result = {
            "repeats": args.repeats,
            "cpu_count": os.cpu_count(),
            "machine": platform.platform(),
            "rows": [{"what": what, "how": how, **t} for what, how, t in rows],
        }
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
