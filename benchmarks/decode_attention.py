"""Step 16's fused attention kernel in gpt2.fast's one-token decode step: how fast it runs.

    python benchmarks/decode_attention.py [--file steps/step_16.mojo] [--repeats 40]
                                          [--new-tokens 24] [--json book/data/decode-attention-cpu.json]

GPT-2 small's shapes (random weights, seeded), float32, on the CPU. For 16 and 1000 cached
positions, two builds of gpt2.fast's one-token graph (``fast.compile_decoder(model,
fast.ONE)``) are compared: attention from MAX's composed ops (as gpt2.fast writes it, over
the cache's whole capacity with unused positions masked), and the Mojo kernel of
``--file`` (default: the reference, ``solutions/solution_16.mojo``), which reads only the
cached positions. The capacity is the one a generation of that length gets
(``fast.capacity_for``).

* **One decode step**: medians (and quartiles) of ``--repeats`` warm runs, in ms; the two
  builds' logits must agree (to 1e-3), or the script says so and exits 1.
* **Attention alone**: only the attention of a decode step, the new token's query (as its
  key and value too) against each of the 12 layers' own caches (so that they come from
  memory, as in the model), in one graph, both ways, at 16, 520 and 1000 cached positions
  (520 and 1000 in the same capacity, 1024).
* **Greedy generation**: ``--new-tokens`` tokens after a prompt of 16, then of 1000 tokens, one
  float32 token per run (``draft=0``); tokens per second of the decoding (the prompt's own
  run is not counted), and whether the two builds chose the same ids (they must).
* **The edit loop** (unless ``--no-edit-loop``): ``python -m checks 16`` on a copy of the
  file no cache has seen, on it again unchanged, and after a one-line edit, as
  ``benchmarks/kernels.py`` does for step 15.

The two builds' decode steps are timed in turns, so that a change in the machine's load
falls on both.

Both graphs are compiled first (minutes, the first time on a machine) and the compile
times are recorded. The load average at the start is recorded too: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CACHED = (16, 1000)
ATTENTION_ALONE = (16, 520, 1000)  # 520: half the capacity of 1000's cache
COMPOSED, KERNEL = "MAX composed ops", "Mojo kernel"


def interleaved_ms(repeats: int, steps: dict) -> dict:
    """Milliseconds per call of each of ``steps`` (label → function), taken in turns so
    that a change in the machine's load falls on all of them: medians and quartiles."""
    for step in steps.values():
        step()
    times: dict = {label: [] for label in steps}
    for _ in range(repeats):
        for label, step in steps.items():
            started = time.perf_counter()
            step()
            times[label].append((time.perf_counter() - started) * 1000)
    result = {}
    for label, ms in times.items():
        q1, median, q3 = statistics.quantiles(ms, n=4)
        result[label] = {"ms": median, "q1_ms": q1, "q3_ms": q3}
    return result


def model_and_kernel(source: Path):
    from checks import seeded
    from gpt2 import kernels, runtime
    from gpt2.checkpoint import build
    from solutions.solution_01 import GPT2Config
    from solutions.solution_10 import GPT2LMHeadModel

    model = build(GPT2LMHeadModel, GPT2Config(), runtime.pick_device("cpu").device)
    model.load_state_dict(seeded.tied(seeded.weights(seeded.shapes(model), seed=2), model))
    return model, kernels.decode_attention(source)


def compile_all(model, attention) -> dict:
    from gpt2 import fast

    seconds = {}
    for label, kind, op in (
        ("prompt graph (ROWS)", fast.ROWS, None),
        (f"one-token graph, {COMPOSED}", fast.ONE, None),
        (f"one-token graph, {KERNEL}", fast.ONE, attention),
    ):
        started = time.perf_counter()
        fast.compile_decoder(model, kind, op)
        seconds[label] = time.perf_counter() - started
        print(f"  compiled {label} in {seconds[label]:.1f} s", flush=True)
    return seconds


def attention_alone(model, attention, cached: int, repeats: int) -> dict:
    """Only the attention of one decode step, in all 12 layers, in one graph: one query per
    layer against that layer's own cache (so that it comes from memory, as in the model),
    both ways."""
    from max.dtype import DType
    from max.experimental import functional as F
    from max.experimental.nn import Module
    from max.experimental.tensor import TensorType

    from gpt2 import compiled, fast
    from gpt2.checkpoint import build

    config = model.config
    layers, heads, head_dim = config.n_layer, config.n_head, config.n_embd // config.n_head
    capacity = fast.capacity_for(cached + 1, config.n_positions)
    sizes = SimpleNamespace(n_head=heads, head_dim=head_dim, one_row=True)  # what attend reads

    class Attention(Module):
        def __init__(self, op):
            self.op = op

        def forward(self, q, start, hidden, *cache):
            later = F.constant(0.0, DType.float32, device=q.device).reshape([1, 1])
            outs = []
            for keys, values_t in zip(cache[:layers], cache[layers:], strict=True):
                if self.op is not None:
                    outs.append(self.op(q, q, q, keys, values_t, start))
                    continue
                one = q.reshape([heads, 1, head_dim])
                attend = fast.CachedAttention.attend
                outs.append(attend(sizes, one, one, one, keys, values_t, hidden, later))
            return F.stack([o.reshape([heads, head_dim]) for o in outs])

    types = [
        TensorType(DType.float32, [heads, head_dim], model.device),
        TensorType(DType.int64, [1], model.device),
        TensorType(DType.float32, [capacity, 1], model.device),
        *[TensorType(DType.float32, [heads, capacity, head_dim], model.device)] * layers,
        *[TensorType(DType.float32, [heads, head_dim, capacity], model.device)] * layers,
    ]
    rng = np.random.default_rng(17)
    hidden = (np.arange(capacity) >= cached).astype(np.float32).reshape(capacity, 1) * 1e30
    arrays = [rng.standard_normal((heads, head_dim), dtype=np.float32)]
    arrays += [np.array([cached], np.int64), hidden]
    arrays += [rng.standard_normal([int(d) for d in t.shape], dtype=np.float32) for t in types[3:]]
    inputs = [compiled.to_device(a, model.device) for a in arrays]
    steps, outs = {}, {}
    for label, op in ((COMPOSED, None), (KERNEL, attention)):
        graph = build(Attention, op, model.device).compile(*types, weights={})
        steps[label] = lambda graph=graph: compiled.to_host(graph(*inputs))
        outs[label] = steps[label]()
    result = {"cached": cached, "capacity": capacity, **interleaved_ms(repeats, steps)}
    result["max_abs_difference"] = float(np.abs(outs[COMPOSED] - outs[KERNEL]).max())
    return result


def decode_step(model, attention, cached: int, repeats: int) -> dict:
    """One decode step after ``cached`` random positions, both builds."""
    from gpt2 import compiled, fast

    config = model.config
    capacity = fast.capacity_for(cached + 1, config.n_positions)
    cache = fast.FixedCache(model, capacity)
    head_dim = config.n_embd // config.n_head
    shape = (config.n_layer, config.n_head, cached, head_dim)
    rng = np.random.default_rng(16)
    cache.append(*(rng.standard_normal(shape, dtype=np.float32) for _ in range(2)))
    token = compiled.to_device(np.array([7], np.int64), model.device)
    start = compiled.to_device(np.array([cached], np.int64), model.device)
    row = {"cached": cached, "capacity": capacity}
    steps = {}
    for label, op in ((COMPOSED, None), (KERNEL, attention)):
        graph = fast.compile_decoder(model, fast.ONE, op)
        steps[label] = lambda graph=graph: [
            compiled.to_host(t) for t in graph(token, start, *cache.tensors())
        ]
    logits = {label: step()[0] for label, step in steps.items()}
    row.update(interleaved_ms(repeats, steps))
    row["max_abs_logit_difference"] = float(np.abs(logits[COMPOSED] - logits[KERNEL]).max())
    return row


def generation(model, attention, cached: int, new_tokens: int) -> dict:
    """Greedy generation of ``new_tokens`` after a prompt of ``cached`` tokens, both builds."""
    from gpt2 import fast

    prompt = [int(i) for i in np.random.default_rng(cached).integers(0, 50257, cached)]
    row = {"prompt_tokens": cached, "new_tokens": new_tokens}
    ids = {}
    for label, op in ((COMPOSED, None), (KERNEL, attention)):
        stream = fast.stream_fast(model, prompt, new_tokens, draft=0, attention=op)
        ids[label] = [next(stream)]  # the prompt's run chooses the first token
        started = time.perf_counter()
        ids[label] += list(stream)
        seconds = time.perf_counter() - started
        row[label] = {"tokens_per_s": (new_tokens - 1) / seconds, "seconds": seconds}
    row["same_ids"] = ids[COMPOSED] == ids[KERNEL]
    return row


def print_ms(title: str, rows: list[dict]) -> None:
    print(title)
    for row in rows:
        differ = row.get("max_abs_logit_difference", row.get("max_abs_difference"))
        print(
            f"  {row['cached']:>5} cached (capacity {row['capacity']}): "
            f"{COMPOSED} {row[COMPOSED]['ms']:.2f}, {KERNEL} {row[KERNEL]['ms']:.2f}"
            f"   (outputs differ by {differ:.1e})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=ROOT / "solutions" / "solution_16.mojo")
    parser.add_argument("--repeats", type=int, default=40, help="timed decode steps")
    parser.add_argument("--new-tokens", type=int, default=24)
    parser.add_argument("--no-edit-loop", action="store_true", help="time the decode only")
    parser.add_argument("--json", help="write the results here ('-': stdout)")
    args = parser.parse_args(argv)
    source = args.file.resolve()

    from benchmarks import kernels as bench
    from gpt2 import runtime

    runtime.quiet_max()
    result = {
        **bench.about(source, args.repeats),
        "model": "GPT-2 small's shapes, seeded random weights, float32",
    }
    model, attention = model_and_kernel(source)
    print("compiling gpt2.fast's graphs …", flush=True)
    result["compile_s"] = compile_all(model, attention)
    result["steps"] = [decode_step(model, attention, n, args.repeats) for n in CACHED]
    print_ms(f"one decode step, ms (median of {args.repeats}):", result["steps"])
    result["attention_alone"] = [
        attention_alone(model, attention, n, args.repeats) for n in ATTENTION_ALONE
    ]
    title = f"attention alone, {model.config.n_layer} layers, ms (median of {args.repeats}):"
    print_ms(title, result["attention_alone"])
    result["generation"] = [generation(model, attention, n, args.new_tokens) for n in CACHED]
    print(f"greedy generation, {args.new_tokens} tokens, tokens/s:")
    for row in result["generation"]:
        print(
            f"  after {row['prompt_tokens']:>5}: {COMPOSED} {row[COMPOSED]['tokens_per_s']:.1f}, "
            f"{KERNEL} {row[KERNEL]['tokens_per_s']:.1f}, same ids: {row['same_ids']}"
        )
    if not args.no_edit_loop:
        print("python -m checks 16 --file X, as a learner runs it:")
        result["edit_loop"] = bench.edit_loop(16, source, cold=False, cold_timeout=0)
        bench.print_edit_loop(result["edit_loop"])
    if args.json:
        text = json.dumps(result, indent=1, ensure_ascii=False) + "\n"
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
            print(f"wrote {args.json}")
    ok = (
        all(r["max_abs_logit_difference"] < 1e-3 for r in result["steps"])
        and all(r["max_abs_difference"] < 1e-4 for r in result["attention_alone"])
        and all(r["same_ids"] for r in result["generation"])
        and bench.edit_loop_passed(result.get("edit_loop", {}))
    )
    if not ok:
        print("FAILED: the kernel's logits or ids differ from MAX's", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
