"""Generation speed: HuggingFace's ``generate`` against ours, on the same GPT-2 weights.

    python benchmarks/generate.py [--new-tokens 64 256 1000] [--prompt-tokens 16]
                                  [--repeats 3] [--model PATH] [--json results.json]

One set of weights (random at GPT-2 small's real size unless ``--model`` names a
checkpoint directory), greedy decoding, float32 on the CPU, every length in turn:

* HuggingFace transformers' ``generate`` (PyTorch), in a child process that builds the
  same weights (so that neither framework's threads or memory count against the other);
* step 12's ``generate``: the whole text through the model for every token (the shortest
  length only: it grows with the square of the text);
* step 13's ``generate_cached``: the KV cache, one token per run;
* ``gpt2.fast``: step 13's model with a cache of fixed capacity written in place, greedy
  tokens guessed by a Q6_K copy of the weights and checked in float32, several per pass;
* ``gpt2.fast`` without the guesses: one float32 token per run.

Tokens per second count the new tokens over the whole call (prefill included). At the
shortest length the runners go in turn ``--repeats`` times and the median is reported, so a
machine busy with something else slows all of them alike; longer lengths run once. Also
reported: one decode step's time with 16 and with 1000 cached positions (step 13,
gpt2.fast and its drafter); how many guesses float32 kept; the floor, the 49 one-row
products of a decode step timed with NumPy in the same run; the compile times of our
graphs, cold (a graph MAX has not seen: it compiles it; its kernel cache may hold kernels)
and warm (the stored graph is reused, as on every run after the first); and the peak
memory of our process and of HuggingFace's. The exit status is 1 if any of ours chose
other ids than HuggingFace.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
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


def hf_generate(hf, prompt: list[int], n: int) -> list[int]:
    """HuggingFace's greedy ``generate``: the ``n`` new ids after ``prompt``."""
    import torch

    with torch.no_grad():
        ids = torch.tensor([prompt])  # an explicit mask: pad id 0 is a real token here
        out = hf.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False
        )
    return out[0, len(prompt) :].tolist()


def hf_worker(model: str | None, save_to: str | None) -> None:
    """The HuggingFace side, in a process of its own (``--hf-worker``): builds the model
    (and with ``save_to`` writes it there, for ours to load), says what it is in one JSON
    line, then answers each request line {"prompt", "n"} with the generated ids; an empty
    line: its peak memory, then exit."""
    import torch

    hf = hf_model(argparse.Namespace(model=model))
    if save_to:
        hf.save_pretrained(save_to)  # config.json and model.safetensors
    ready = {
        "torch_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in hf.parameters()),
        "vocab_size": hf.config.vocab_size,
    }
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        request = json.loads(line)
        print(json.dumps(hf_generate(hf, request["prompt"], request["n"])), flush=True)
    print(json.dumps(peak_memory_mb()), flush=True)


class HuggingFaceProcess:
    """HuggingFace's ``generate`` in a child process, so that the two frameworks do not share
    a process: neither's threads nor memory count against the other. With ``save_to`` the
    child writes the weights it built there (random weights: ours load the same)."""

    def __init__(self, model: str | None, save_to: str | None = None):
        command = [sys.executable, __file__, "--hf-worker"]
        command += ["--model", model] if model else []
        command += ["--hf-save", save_to] if save_to else []
        self.child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.info = json.loads(self.child.stdout.readline())  # once the weights are built

    def _ask(self, line: str):
        self.child.stdin.write(line + "\n")
        self.child.stdin.flush()
        return json.loads(self.child.stdout.readline())

    def generate(self, prompt: list[int], n: int) -> list[int]:
        return self._ask(json.dumps({"prompt": prompt, "n": n}))

    def close(self) -> float:
        """Stop the child; returns its peak memory in MB."""
        peak = self._ask("")
        self.child.wait(timeout=60)
        return peak


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def compile_times(model, target, cold: bool) -> dict[str, float]:
    """Seconds to compile our graphs in this process: "warm" when MAX's own cache of compiled
    graphs holds them (any earlier run), and, with ``cold``, first once more with a variant
    MAX has never seen (a fresh graph name per run, so MAX compiles it; its kernel cache
    may hold kernels already)."""
    import uuid

    from gpt2 import compiled, fast
    from solutions import solution_13

    def compilers(fresh: str):
        twin = type(f"Twin{fresh}", (solution_13.GPT2CachedLMHeadModel,), {})
        return {
            "generate": (compiled.compiled_memo("logits"), lambda: compiled.compile_model(model)),
            "generate_cached": (
                compiled.compiled_memo("cached"),
                lambda: compiled.compile_twin(
                    model, twin if fresh else solution_13.GPT2CachedLMHeadModel
                ),
            ),
            "fast decode": (
                fast._DECODERS,
                lambda: [fast.compile_decoder(model, kind) for kind in fast.KINDS],
            ),
        }

    times: dict[str, float] = {}
    for label, fresh in (("cold", uuid.uuid4().hex[:8]), ("warm", "")) if cold else (("warm", ""),):
        for name, (memo, compile_graph) in compilers(fresh).items():
            if label == "cold" and name != "generate_cached":
                continue  # only the twin's graph can be made new by its class's name
            memo.pop(model, None)
            times[f"{name} {label}"], _ = timed(compile_graph)
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
    fixed.append(keys[:, 0], values[:, 0])
    cached = (compiled.to_device(keys, model.device), compiled.to_device(values, model.device))
    token = compiled.to_device(np.array([7], dtype=np.int64), model.device)
    position = compiled.to_device(np.array([past], dtype=np.int64), model.device)
    return cached, fixed, token, position


def decode_step_ms(model, target, past: int, capacity_of: int) -> dict[str, float]:
    """One decode step with ``past`` cached positions: step 13's, gpt2.fast's and its
    drafter's (with the capacity a run of ``capacity_of`` tokens would have), median of 15,
    in ms."""
    from gpt2 import compiled, fast
    from solutions import solution_13

    capacity = fast.capacity_for(capacity_of, model.config.n_positions)
    cached, cache, one, position = decode_inputs(model, past, capacity)
    run13 = compiled.cached_function(model, solution_13.GPT2CachedLMHeadModel)

    def step13():
        run13([7], cached)

    def one_token(kind):
        def step():
            out = fast.compile_decoder(model, kind)(one, position, *cache.tensors())
            [compiled.to_host(t) for t in out]

        return step

    result = {}
    steps = {"step 13": step13, "fast": one_token(fast.ONE)}
    steps["fast drafter"] = one_token(fast.DRAFTER)
    for name, step in steps.items():
        step()
        times = [timed(step)[0] * 1000 for _ in range(15)]
        result[name] = statistics.median(times)
    return result


FAST = "ours: fast decode (gpt2.fast)"
ONE_BY_ONE = "ours: gpt2.fast, one token per run"


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
        "--json", metavar="PATH", help="also write the results as JSON ('-': stdout)"
    )
    parser.add_argument("--hf-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hf-save", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hf_worker:
        hf_worker(args.model, args.hf_save)
        return 0

    from gpt2 import runtime

    runtime.quiet_max()
    target = runtime.pick_device("cpu")
    import numpy as np

    from gpt2.fast import DraftStats, generate_fast
    from solutions.solution_11 import load_pretrained
    from solutions.solution_12 import generate
    from solutions.solution_13 import generate_cached

    print(f"loading the weights ({args.model or 'random, GPT-2 small size'})…", flush=True)
    with tempfile.TemporaryDirectory() as saved:  # HuggingFace's random weights, for ours
        peer = HuggingFaceProcess(args.model, None if args.model else saved)
        model = load_pretrained(args.model or saved, device=target.device)[1]  # step 11's loader
    peak_loading = peak_memory_mb()
    lengths = sorted(args.new_tokens)
    prompt = np.random.default_rng(0).integers(0, peer.info["vocab_size"], args.prompt_tokens)
    prompt = prompt.tolist()

    # The floor first: once MAX has run, its worker threads compete with NumPy for the cores.
    floor, matrices = floor_ms(model)
    floor_rate = 1000 / floor
    print("compiling our graphs" + ("" if args.no_cold else ", cold then warm") + "…", flush=True)
    compiles = compile_times(model, target, cold=not args.no_cold)

    hf_name = "HuggingFace generate (PyTorch)"
    drafts: dict[int, DraftStats] = {}  # the fast runner's guesses, per length: all its runs
    runners = {
        hf_name: lambda n: peer.generate(prompt, n),
        "ours: generate_cached (step 13)": lambda n: generate_cached(model, prompt, n),
        FAST: lambda n: generate_fast(model, prompt, n, stats=drafts.setdefault(n, DraftStats())),
        ONE_BY_ONE: lambda n: generate_fast(model, prompt, n, draft=0),
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
        runs[str(n)] = {
            "tokens_per_second": {k: n / statistics.median(v) for k, v in seconds.items()},
            "guesses_kept": {"guessed": drafts[n].guessed, "kept": drafts[n].kept},
            "seconds": seconds,
            "same_ids_as_hf": {k: ids[k] == ids[hf_name] for k in names},
        }

    print("timing single decode steps and the floor…", flush=True)
    peak_after_runs = peak_memory_mb()  # what generating costs, before the extra timings
    peer_peak = peer.close()
    far = min(1000, model.config.n_positions - 1)  # the tiny checkpoint has 64 positions
    near = min(16, far)
    steps = {
        str(near): decode_step_ms(model, target, near, lengths[0] + args.prompt_tokens),
        str(far): decode_step_ms(model, target, far, far + 1),
    }

    print()
    print(
        f"GPT-2 {peer.info['parameters'] / 1e6:.0f}M, float32, CPU "
        f"({os.cpu_count()} cores, torch threads {peer.info['torch_threads']}), "
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
        + f"; the drafter {steps[str(near)]['fast drafter']:.1f}"
    )
    short = runs[str(lengths[0])]["tokens_per_second"]
    if uncached_name in short:
        cached_name = "ours: generate_cached (step 13)"
        print(f"generate_cached / generate: {short[cached_name] / short[uncached_name]:.1f}×")
    first = runs[str(lengths[0])]["tokens_per_second"]
    print(
        f"floor: {matrices} one-row products with NumPy {floor:.1f} ms = {floor_rate:.1f} "
        f"tokens/s; at {lengths[0]} new tokens gpt2.fast makes {first[FAST] / floor_rate:.0%} "
        f"of it, one token per run {first[ONE_BY_ONE] / floor_rate:.0%}"
    )
    print(
        "guesses float32 kept (a length's runs together): "
        + ", ".join(
            f"{r['guesses_kept']['kept']} of {r['guesses_kept']['guessed']} at {n} "
            f"({len(r['seconds'][FAST])} run{'s' * (len(r['seconds'][FAST]) > 1)})"
            for n, r in runs.items()
        )
    )
    print("compile, seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in compiles.items()))
    print(
        f"peak memory: ours {peak_loading:.0f} MB after loading, "
        f"{peak_after_runs:.0f} MB after every length's runs, "
        f"{peak_memory_mb():.0f} MB at the end (after the single steps); HuggingFace's "
        f"process {peer_peak:.0f} MB"
    )

    if args.json:
        result = {
            "model": args.model or "random GPT-2 small",
            "parameters": peer.info["parameters"],
            "prompt_tokens": len(prompt),
            "lengths": lengths,
            "repeats": args.repeats,
            "cpu_count": os.cpu_count(),
            "torch_threads": peer.info["torch_threads"],
            "machine": platform.platform(),
            "runs": runs,
            "decode_step_ms": steps,
            "floor": {
                "one_row_products_ms": floor,
                "matrices": matrices,
                "tokens_per_second": floor_rate,
            },
            "compile_seconds": compiles,
            "peak_memory_mb": peak_after_runs,
            "peak_memory_mb_after_loading": peak_loading,
            "peak_memory_mb_at_the_end": peak_memory_mb(),
            "peak_memory_mb_huggingface": peer_peak,
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
