"""Generation speed: HuggingFace's ``generate`` against ours, on the same GPT-2 weights.

    python benchmarks/generate.py [--new-tokens 64] [--prompt-tokens 16] [--repeats 3]
                                  [--model PATH] [--json results.json]

One process, one set of weights (random at GPT-2 small's real size unless ``--model``
names a checkpoint directory), greedy decoding, float32 on the CPU:

* HuggingFace transformers' ``generate`` (PyTorch);
* step 12's ``generate``: the whole text through the model for every token;
* step 13's ``generate_cached``: the KV cache, one token per run.

Tokens per second count the new tokens over the whole call (prefill included). The three
are run in turn, ``--repeats`` times, and the median is reported, so that a machine busy
with something else slows all of them alike. Also reported: the compile times of our two
graphs, cold (no stored graph: MAX compiles it; its kernel cache may already hold kernels)
and warm (the stored graph is reused, as on every run after the first), and the peak
memory of the process. The exit status is 1 if any of ours chose other ids than HuggingFace.
"""

from __future__ import annotations

import argparse
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
    from gpt2 import compiled
    from solutions import solution_13

    compilers = {
        "generate": (compiled.compiled_memo("logits"), lambda: compiled.compile_model(model)),
        "generate_cached": (
            compiled.compiled_memo("cached"),
            lambda: compiled.compile_twin(model, solution_13.GPT2CachedLMHeadModel),
        ),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
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
        "--json", metavar="PATH", help="also write the results as JSON ('-': stdout)"
    )
    args = parser.parse_args(argv)

    from checks import runtime

    runtime.quiet_max()
    target = runtime.pick_device("cpu")
    import numpy as np
    import torch

    from solutions.solution_12 import generate
    from solutions.solution_13 import generate_cached

    print(f"loading the weights ({args.model or 'random, GPT-2 small size'})…", flush=True)
    hf = hf_model(args)
    model = our_model(hf, target)
    n = args.new_tokens
    prompt = np.random.default_rng(0).integers(0, hf.config.vocab_size, args.prompt_tokens).tolist()

    print(
        "compiling our two graphs" + ("" if args.no_cold else ", cold then warm") + "…", flush=True
    )
    compiles = compile_times(model, target, cold=not args.no_cold)

    def run_hf():
        with torch.no_grad():
            ids = torch.tensor([prompt])
            out = hf.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False
            )
        return out[0, len(prompt) :].tolist()

    runners = {
        "HuggingFace generate (PyTorch)": run_hf,
        "ours: generate_cached (step 13)": lambda: generate_cached(model, prompt, n),
    }
    if not args.skip_uncached:
        runners["ours: generate (step 12)"] = lambda: generate(model, prompt, n)
    for run in runners.values():  # warm-up: first-call costs are not generation speed
        timed(run)
    seconds = {name: [] for name in runners}
    ids = {}
    for repeat in range(args.repeats):
        print(f"timing, round {repeat + 1} of {args.repeats}…", flush=True)
        for name, run in runners.items():
            elapsed, ids[name] = timed(run)
            seconds[name].append(elapsed)

    rates = {name: n / statistics.median(s) for name, s in seconds.items()}
    hf_name = next(iter(runners))
    cached_name = "ours: generate_cached (step 13)"
    uncached_name = "ours: generate (step 12)"
    same = {name: ids[name] == ids[hf_name] for name in runners}

    print()
    print(
        f"GPT-2 {sum(p.numel() for p in hf.parameters()) / 1e6:.0f}M, float32, CPU "
        f"({os.cpu_count()} cores, torch threads {torch.get_num_threads()}), "
        f"prompt {len(prompt)} tokens, {n} new, greedy"
    )
    print(f"{'':34}{'tokens/s':>10}{'vs HF':>9}   same ids as HF")
    for name, rate in rates.items():
        print(
            f"{name:34}{rate:10.1f}{rate / rates[hf_name]:8.2f}×   {'yes' if same[name] else 'NO'}"
        )
    if uncached_name in rates:
        print(f"generate_cached / generate: {rates[cached_name] / rates[uncached_name]:.1f}×")
    print("compile, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in compiles.items()))
    print(f"peak memory: {peak_memory_mb():.0f} MB")

    if args.json:
        result = {
            "model": args.model or "random GPT-2 small",
            "parameters": sum(p.numel() for p in hf.parameters()),
            "prompt_tokens": len(prompt),
            "new_tokens": n,
            "repeats": args.repeats,
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "machine": platform.platform(),
            "tokens_per_second": rates,
            "seconds": seconds,
            "same_ids_as_hf": same,
            "compile_seconds": compiles,
            "peak_memory_mb": peak_memory_mb(),
        }
        text = json.dumps(result, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    if not all(same.values()):
        print("FAILED: not every generation chose HuggingFace's ids", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
