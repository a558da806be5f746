"""Generation speed: HuggingFace's ``generate`` against ours, on the same GPT-2 weights.

    python benchmarks/generate.py [--new-tokens 64 256 1000] [--prompt-tokens 16]
                                  [--repeats 3] [--model PATH] [--json results.json]

One process, one set of weights (random at GPT-2 small's real size unless ``--model``
names a checkpoint directory), greedy decoding, float32 on the CPU, every length in turn:

* HuggingFace transformers' ``generate`` (PyTorch);
* step 12's ``generate``: the whole text through the model for every token (the shortest
  length only: it grows with the square of the text);
* step 13's ``generate_cached``: the KV cache, one token per run;
* ``gpt2.fast``: step 13's model with a cache of fixed capacity written in place.

Tokens per second count the new tokens over the whole call (prefill included). At the
shortest length the runners go in turn ``--repeats`` times and the median is reported, so a
machine busy with something else slows all of them alike; longer lengths run once. Also
reported: one decode step's time with 16 and with 1000 cached positions (step 13 and
gpt2.fast); the floor, the 49 one-row products of a decode step timed with NumPy in the
same run; the compile times of our graphs, cold (no stored graph: MAX compiles it; its
kernel cache may already hold kernels) and warm (the stored graph is reused, as on every
run after the first); and the peak memory of the process. The exit status is 1 if any of
ours chose other ids than HuggingFace.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_memory_mb() -> float:
    """The process's peak resident memory so far (Linux: VmHWM; else ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def hf_model(args):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if args.model:
        model = GPT2LMHeadModel.from_pretrained(args.model, dtype=torch.float32)
    else:
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config())  # 124M parameters, HF's own initialisation
    model.eval()
    model.generation_config.eos_token_id = None  # never stop early: always the full count
    model.generation_config.pad_token_id = 0
    return model


def our_model(hf, target):
    from gpt2.checkpoint import build, config_fields, load_state
    from solutions.solution_01 import GPT2Config
    from solutions.solution_10 import GPT2LMHeadModel
    from solutions.solution_11 import convert_hf_weights

    config = GPT2Config(**config_fields(hf.config.to_dict()))
    state = convert_hf_weights({k: v.detach().numpy() for k, v in hf.state_dict().items()})
    return load_state(build(GPT2LMHeadModel, config, target.device), state, target.device)


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def compile_times(model, target, cold: bool) -> dict[str, float]:
    """Seconds to compile our two graphs: cold (an empty graph store, so MAX compiles them;
    its kernel cache may hold kernels already) and warm (a new session finds them stored)."""
    import shutil

    from checks import paths, runtime
    from gpt2 import compiled, fast
    from solutions import solution_13

    compilers = {
        "generate": (compiled.compiled_memo("logits"), lambda: compiled.compile_model(model)),
        "generate_cached": (
            compiled.compiled_memo("cached"),
            lambda: compiled.compile_twin(model, solution_13.GPT2CachedLMHeadModel),
        ),
        "fast decode": (fast._DECODERS, lambda: fast.compile_decoder(model)),
    }

    def compile_all(label: str) -> None:
        runtime._SESSIONS.clear()
        runtime.cache_every_compile(target)  # a new session: nothing compiled in memory
        for name, (memo, compile_graph) in compilers.items():
            memo.pop(model, None)
            times[f"{name} {label}"], _ = timed(compile_graph)

    times: dict[str, float] = {}
    if cold:
        saved = paths.cache_dir()
        with tempfile.TemporaryDirectory() as store:
            os.environ[paths.CACHE_ENV] = store
            try:
                compile_all("cold")
            finally:
                os.environ[paths.CACHE_ENV] = str(saved)
            # Keep what was compiled: the warm run below and later runs reuse it.
            (saved / "mef").mkdir(parents=True, exist_ok=True)
            for mef in (Path(store) / "mef").glob("*.mef"):
                shutil.copy(mef, saved / "mef" / mef.name)
    compile_all("warm")
    return times


def floor_ms(model, repeats: int = 5) -> tuple[float, int]:
    """One decode step's matrix products with NumPy: one row times each of the 49 weight
    matrices (4 per block, and the head), weights laid out [in, out]; the median of
    ``repeats`` passes, in milliseconds. The memory-bandwidth floor of a decode step."""
    import numpy as np

    matrices = [
        np.ascontiguousarray(tensor.to_numpy().T)
        for name, tensor in model.parameters
        if name.endswith(".weight")
        and len(tensor.shape) == 2
        and "wpe" not in name
        and "wte" not in name
    ]
    rows = [np.ones((1, w.shape[0]), dtype=np.float32) for w in matrices]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        for row, w in zip(rows, matrices, strict=True):
            row @ w
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(matrices)


def decode_inputs(model, past: int, capacity: int):
    """One decode step's inputs after ``past`` random cached positions: step 13's cache
    (keys, values on the model's device), the same in a gpt2.fast ``FixedCache`` of
    ``capacity``, and the next token (7) and its position."""
    import numpy as np

    from gpt2 import compiled, fast

    config = model.config
    shape = (config.n_layer, 1, config.n_head, past, config.n_embd // config.n_head)
    rng = np.random.default_rng(0)
    keys, values = (rng.standard_normal(shape, dtype=np.float32) for _ in range(2))
    fixed = fast.FixedCache(model, capacity)
    fixed.fill(keys, values)
    cached = (compiled.to_device(keys, model.device), compiled.to_device(values, model.device))
    token = compiled.to_device(np.array([7], dtype=np.int64), model.device)
    position = compiled.to_device(np.array([past], dtype=np.int64), model.device)
    return cached, fixed, token, position


def decode_step_ms(model, target, past: int, capacity_of: int) -> dict[str, float]:
    """One decode step with ``past`` cached positions: step 13's and gpt2.fast's (whose
    capacity is what a run of ``capacity_of`` tokens would have), median of 5, in ms."""
    from gpt2 import compiled, fast
    from solutions import solution_13

    capacity = fast.capacity_for(capacity_of, model.config.n_positions)
    cached, cache, one, position = decode_inputs(model, past, capacity)
    run13 = compiled.cached_function(model, solution_13.GPT2CachedLMHeadModel)
    decode = fast.compile_decoder(model)

    def step13():
        run13([7], cached)

    def step_fast():
        out = decode(one, position, *cache.tensors())
        [compiled.to_host(t) for t in out]

    result = {}
    for name, step in (("step 13", step13), ("fast", step_fast)):
        step()
        times = [timed(step)[0] * 1000 for _ in range(5)]
        result[name] = statistics.median(times)
    return result


def bfloat16_report(model, prompt, n: int, hf_ids: list[int], f32_rate: float) -> dict:
    """gpt2.fast with bfloat16 matrices: its speed at ``n`` tokens, how many of its first ids
    agree with HuggingFace's (greedy), and one decode step's logits against float32's."""
    import numpy as np
    from max.dtype import DType

    from gpt2 import compiled, fast

    fast.compile_decoder(model, DType.bfloat16)
    fast.generate_fast(model, prompt, 8, weights=DType.bfloat16)  # first-call costs
    elapsed, ids = timed(lambda: fast.generate_fast(model, prompt, n, weights=DType.bfloat16))
    agree = next((i for i, (a, b) in enumerate(zip(ids, hf_ids, strict=True)) if a != b), n)
    _, cache, token, position = decode_inputs(model, 16, 128)
    logits = {
        w: compiled.to_host(fast.compile_decoder(model, w)(token, position, *cache.tensors())[0])
        for w in (DType.float32, DType.bfloat16)
    }
    full, half = logits[DType.float32], logits[DType.bfloat16]
    return {
        "new_tokens": n,
        "tokens_per_second": n / elapsed,
        "vs_float32": n / elapsed / f32_rate,
        "ids_agreeing_with_hf": agree,
        "logits_max_abs_diff": float(np.abs(full - half).max()),
        "logits_spread": float(full.max() - full.min()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, nargs="+", default=[64, 256, 1000])
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="at the shortest length")
    parser.add_argument("--model", help="a checkpoint directory (default: random weights)")
    parser.add_argument(
        "--no-cold",
        action="store_true",
        help="skip the cold compile (minutes); 'warm' then means whatever the store holds",
    )
    parser.add_argument(
        "--skip-uncached", action="store_true", help="leave out step 12's generate (the slow one)"
    )
    parser.add_argument(
        "--no-bfloat16", action="store_true", help="leave out gpt2.fast with bfloat16 matrices"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write the results as JSON ('-': stdout)"
    )
    args = parser.parse_args(argv)

    from checks import runtime

    runtime.quiet_max()
    target = runtime.pick_device("cpu")
    import numpy as np
    import torch

    from gpt2.fast import generate_fast
    from solutions.solution_12 import generate
    from solutions.solution_13 import generate_cached

    print(f"loading the weights ({args.model or 'random, GPT-2 small size'})…", flush=True)
    hf = hf_model(args)
    model = our_model(hf, target)
    lengths = sorted(args.new_tokens)
    prompt = np.random.default_rng(0).integers(0, hf.config.vocab_size, args.prompt_tokens).tolist()

    # The floor first: once MAX has run, its worker threads compete with NumPy for the cores.
    floor, matrices = floor_ms(model)
    floor_rate = 1000 / floor
    print("compiling our graphs" + ("" if args.no_cold else ", cold then warm") + "…", flush=True)
    compiles = compile_times(model, target, cold=not args.no_cold)

    def run_hf(n):
        with torch.no_grad():
            ids = torch.tensor([prompt])
            out = hf.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False
            )
        return out[0, len(prompt) :].tolist()

    hf_name = "HuggingFace generate (PyTorch)"
    runners = {
        hf_name: run_hf,
        "ours: generate_cached (step 13)": lambda n: generate_cached(model, prompt, n),
        "ours: fast decode (gpt2.fast)": lambda n: generate_fast(model, prompt, n),
    }
    uncached_name = "ours: generate (step 12)"
    if not args.skip_uncached:
        runners[uncached_name] = lambda n: generate(model, prompt, n)
    for run in runners.values():  # warm-up: first-call costs are not generation speed
        timed(functools.partial(run, 8))

    runs = {}
    for n in lengths:
        repeats = args.repeats if n == lengths[0] else 1
        names = [k for k in runners if k != uncached_name or n == lengths[0]]
        seconds = {name: [] for name in names}
        ids = {}
        for repeat in range(repeats):
            print(f"{n} new tokens, round {repeat + 1} of {repeats}…", flush=True)
            for name in names:
                elapsed, ids[name] = timed(functools.partial(runners[name], n))
                seconds[name].append(elapsed)
        if n == lengths[0]:
            ids_at_first = dict(ids)
        runs[str(n)] = {
            "tokens_per_second": {k: n / statistics.median(v) for k, v in seconds.items()},
            "seconds": seconds,
            "same_ids_as_hf": {k: ids[k] == ids[hf_name] for k in names},
        }

    print("timing single decode steps and the floor…", flush=True)
    peak_after_runs = peak_memory_mb()  # what generating costs, before the extra timings
    bf16 = None
    if not args.no_bfloat16:
        print("gpt2.fast with bfloat16 matrices…", flush=True)
        first = runs[str(lengths[0])]
        bf16 = bfloat16_report(
            model,
            prompt,
            lengths[0],
            ids_at_first[hf_name],
            first["tokens_per_second"]["ours: fast decode (gpt2.fast)"],
        )
    far = min(1000, model.config.n_positions - 1)  # the tiny checkpoint has 64 positions
    near = min(16, far)
    steps = {
        str(near): decode_step_ms(model, target, near, lengths[0] + args.prompt_tokens),
        str(far): decode_step_ms(model, target, far, far + 1),
    }

    print()
    print(
        f"GPT-2 {sum(p.numel() for p in hf.parameters()) / 1e6:.0f}M, float32, CPU "
        f"({os.cpu_count()} cores, torch threads {torch.get_num_threads()}), "
        f"prompt {len(prompt)} tokens, greedy"
    )
    for n, run in runs.items():
        rates = run["tokens_per_second"]
        print(f"\n{n} new tokens{'':21}{'tokens/s':>10}{'vs HF':>9}   same ids as HF")
        for name, rate in rates.items():
            same = "yes" if run["same_ids_as_hf"][name] else "NO"
            print(f"{name:34}{rate:10.1f}{rate / rates[hf_name]:8.2f}×   {same}")
    print(
        "\none decode step, ms: "
        + "; ".join(
            f"{who} {steps[str(near)][who]:.1f} at {near} cached, {steps[str(far)][who]:.1f} at "
            f"{far} ({steps[str(far)][who] / steps[str(near)][who]:.2f}×)"
            for who in ("step 13", "fast")
        )
    )
    short = runs[str(lengths[0])]["tokens_per_second"]
    if uncached_name in short:
        cached_name = "ours: generate_cached (step 13)"
        print(f"generate_cached / generate: {short[cached_name] / short[uncached_name]:.1f}×")
    fast_rate = runs[str(lengths[0])]["tokens_per_second"]["ours: fast decode (gpt2.fast)"]
    print(
        f"floor: {matrices} one-row products with NumPy {floor:.1f} ms = {floor_rate:.1f} "
        f"tokens/s; gpt2.fast at {lengths[0]} new tokens: {fast_rate / floor_rate:.0%} of it"
    )
    if bf16:
        print(
            f"gpt2.fast with bfloat16 matrices, {bf16['new_tokens']} tokens: "
            f"{bf16['tokens_per_second']:.1f} tokens/s ({bf16['vs_float32']:.2f}× float32); the "
            f"first {bf16['ids_agreeing_with_hf']} ids agree with HuggingFace's; one step's "
            f"logits differ by up to {bf16['logits_max_abs_diff']:.3f} (their spread: "
            f"{bf16['logits_spread']:.1f})"
        )
    print("compile, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in compiles.items()))
    print(
        f"peak memory: {peak_after_runs:.0f} MB after every length's runs, "
        f"{peak_memory_mb():.0f} MB at the end (single steps and bfloat16 compiled too)"
    )

    if args.json:
        result = {
            "model": args.model or "random GPT-2 small",
            "parameters": sum(p.numel() for p in hf.parameters()),
            "prompt_tokens": len(prompt),
            "lengths": lengths,
            "repeats": args.repeats,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "machine": platform.platform(),
            "runs": runs,
            "decode_step_ms": steps,
            "floor": {
                "one_row_products_ms": floor,
                "matrices": matrices,
                "tokens_per_second": floor_rate,
            },
            "bfloat16_weights": bf16,
            "compile_seconds": compiles,
            "peak_memory_mb": peak_after_runs,
            "peak_memory_mb_at_the_end": peak_memory_mb(),
        }
        text = json.dumps(result, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if not all(all(r["same_ids_as_hf"].values()) for r in runs.values()):
        print("FAILED: not every generation chose HuggingFace's ids", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
