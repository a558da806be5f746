"""Step 15's GELU kernel: how fast it runs, and how long a learner waits for a check.

    python benchmarks/kernels.py [--file steps/step_15.mojo] [--repeats 200] [--cold]
                                 [--json book/data/kernels-cpu.json]

Two measurements, one after the other (the machine may be shared: the load average at the
start is recorded):

* **GELU on a float32 [n, 3072] tensor** (GPT-2 small's MLP width) for n = 1, 16 and 128:
  the Mojo kernel of ``--file`` (default: the reference, ``solutions/solution_15.mojo``)
  against MAX's own ``gelu(x, approximate="tanh")``, each the only op of a graph compiled
  with ``max.graph.Graph`` and run by an ``InferenceSession`` on the CPU, and NumPy's
  float32 formula as a yardstick. Medians (and quartiles) of ``--repeats`` warm calls. The
  kernel's and MAX's numbers must agree with the float64 formula (to 1e-5): if they do
  not, the script says so and exits 1.
* **The edit loop**: ``python -m checks 15 --file X`` run as a learner runs it (a
  subprocess, wall time, and the compile time the check itself reports on stderr), with
  MAX's cache as it is: (a) a copy of the file whose source is new to every cache (its
  √(2/π) is written with extra digits, random each run, so Mojo and MAX compile it as new
  code; the float32 result is the same), (b) the same copy again, unchanged, (c) after a
  one-line edit (``0.5 * x`` becomes ``x * 0.5``, again a new source). ``--cold`` adds (d):
  the reference checked with an empty MAX cache and an empty checker cache (temporary
  folders), capped at ``--cold-timeout`` seconds.

The checker's background warm-up is off for every run (``GPT2_CHECKS_WARMUP=0``): it would
compile other steps' graphs at the same time. The copies live in a temporary folder; their
compiled packages are removed from ``.cache/checks/kernels`` afterwards, and the checker's
progress file is put back as it was.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTH = 3072  # GPT-2 small's MLP: 4 × 768
ROWS = (1, 16, 128)
COMPILED = re.compile(r"(?:compiled for|was ready after) ([\d.]+) s")  # "… was ready after 3 s."


@dataclass(frozen=True)
class Edits:
    """How the edit loop changes a kernel step's reference without changing its numbers:
    ``fresh`` (text → a written-out constant gains extra digits, ``{stamp}``) makes code no
    cache has seen; ``edit`` (old, new) is the one-line edit."""

    fresh: tuple[str, str]
    edit: tuple[str, str]


EDITS = {
    15: Edits(  # √(2/π) with more digits; 0.5 · x written x · 0.5
        fresh=("0.7978845608028654", "0.7978845608028654{stamp}"),
        edit=("0.5 * x", "x * 0.5"),
    ),
    16: Edits(  # 1 / √d written 1.000…{stamp} / √d; exp(w - top) written exp(-(top - w))
        fresh=("var scale = 1 / sqrt", "var scale = 1.000000000{stamp} / sqrt"),
        edit=("exp(w[unsafe_offset=t] - top)", "exp(-(top - w[unsafe_offset=t]))"),
    ),
}


def gelu_numpy(x: np.ndarray) -> np.ndarray:
    """The same formula in float32, as NumPy computes it: the yardstick."""
    c = np.float32(np.sqrt(2 / np.pi))
    return np.float32(0.5) * x * (1 + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))


def median_us(repeats: int, fn) -> dict:
    """Microseconds per call of ``fn()``: the median and the quartiles, after warm-up."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1e6)
    q1, median, q3 = statistics.quantiles(times, n=4)
    return {"us": median, "q1_us": q1, "q3_us": q3}


# --------------------------------------------------------------------------- GELU timings


def gelu_graphs(source: Path) -> tuple[dict, dict]:
    """The kernel's graph and MAX's, compiled: (models, compile seconds)."""
    from max.driver import CPU
    from max.dtype import DType
    from max.engine import InferenceSession
    from max.graph import DeviceRef, Graph, TensorType, ops

    from gpt2 import kernels

    started = time.perf_counter()
    built = kernels.package(source)
    packaged_s = time.perf_counter() - started
    rows_type = TensorType(DType.float32, ["rows", WIDTH], device=DeviceRef.CPU())
    with Graph("gelu_mojo", input_types=[rows_type], custom_extensions=[built]) as mojo:
        x = mojo.inputs[0].tensor
        mojo.output(ops.custom(kernels.GELU_OP, DeviceRef.CPU(), [x], [x.type])[0])
    with Graph("gelu_max", input_types=[rows_type]) as own:
        own.output(ops.gelu(own.inputs[0].tensor, approximate="tanh"))
    session = InferenceSession(devices=[CPU()])
    models, seconds = {}, {"mojo precompile (or its cached package)": packaged_s}
    for label, graph in (("Mojo kernel", mojo), ("MAX gelu(tanh)", own)):
        started = time.perf_counter()
        models[label] = session.load(graph)
        seconds[f"{label}: graph compile"] = time.perf_counter() - started
    return models, seconds


def time_gelu(source: Path, repeats: int) -> dict:
    from max.driver import Buffer

    from checks.specs.step_15 import gelu_tanh

    models, compile_s = gelu_graphs(source)
    rng = np.random.default_rng(15)
    rows = []
    agree = True
    for n in ROWS:
        x = (rng.standard_normal((n, WIDTH)) * 3).astype(np.float32)
        exact = gelu_tanh(x)  # float64, the formula step 15's check compares with
        buffer = Buffer.from_numpy(x)
        row = {"rows": n, "numpy": median_us(repeats, lambda x=x: gelu_numpy(x))}
        errors = {"NumPy float32": float(np.abs(gelu_numpy(x) - exact).max())}
        for label, model in models.items():
            out = model.execute(buffer)[0].to_numpy()
            errors[label] = float(np.abs(out - exact).max())
            row[label] = median_us(repeats, lambda m=model, b=buffer: m.execute(b))
        row["max_abs_error_vs_float64"] = errors
        agree &= all(e < 1e-5 for e in errors.values())
        rows.append(row)
    return {"compile_s": compile_s, "rows": rows, "all_agree": agree}


# --------------------------------------------------------------------------- the edit loop


def check(step: int, file: Path, env: dict, timeout: float | None = None) -> dict:
    """``python -m checks STEP --file file``: wall seconds, the check's own report, pass/fail."""
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "checks", str(step), "--file", str(file)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"finished": False, "timeout_s": timeout}
    wall = time.perf_counter() - started
    reports = [line for line in result.stderr.splitlines() if COMPILED.search(line)]
    passed = re.search(rf"PASSED step {step} in ([\d.]+) s", result.stdout)
    return {
        "finished": True,
        "wall_s": wall,
        "passed": result.returncode == 0 and passed is not None,
        "check_says_s": float(passed.group(1)) if passed else None,
        # Every compile the check announced as finished, and their sum.
        "compile_reports": reports,
        "compile_reported_s": sum(float(COMPILED.search(line).group(1)) for line in reports),
    }


def changed(text: str, pair: tuple[str, str], stamp: str = "") -> str:
    """``text`` with the first ``pair[0]`` replaced by ``pair[1]`` (``{stamp}`` filled in)."""
    old, new = pair
    assert old in text, f"the kernel has no {old!r} to change"
    return text.replace(old, new.format(stamp=stamp), 1)


def edit_loop(step: int, source: Path, cold: bool, cold_timeout: float) -> dict:
    """Step ``step``'s check of a new copy of ``source``, of it again, after a one-line
    edit, and (``cold``) of ``source`` with empty caches."""
    from gpt2 import course

    env = {**os.environ, "GPT2_CHECKS_WARMUP": "0", "COLUMNS": "3000", "NO_COLOR": "1"}
    kept = {
        p: p.read_bytes()
        for p in (course.cache_dir() / "progress.json", course.cache_dir() / "last-error.txt")
        if p.exists()
    }
    stamp = "".join(random.choice("123456789") for _ in range(12))
    report: dict = {"warmup": "off (GPT2_CHECKS_WARMUP=0)", "stamp": stamp}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "bench_kernel.mojo"
        text = changed(source.read_text(), EDITS[step].fresh, stamp)
        copy.write_text(text)
        print("  (a) a new source, first check …", flush=True)
        report["a_new_source"] = check(step, copy, env)
        print("  (b) the same file again …", flush=True)
        report["b_unchanged"] = check(step, copy, env)
        copy.write_text(changed(text, EDITS[step].edit))
        print("  (c) after a one-line edit …", flush=True)
        report["c_one_line_edit"] = check(step, copy, env)
        if cold:
            print(f"  (d) empty caches (up to {cold_timeout:.0f} s) …", flush=True)
            modular, checker = Path(tmp) / "modular", Path(tmp) / "checks"
            cold_env = {
                **env,
                "MODULAR_CACHE_DIR": str(modular),
                "GPT2_CHECKS_CACHE": str(checker),
            }
            report["d_empty_caches"] = check(step, source, cold_env, timeout=cold_timeout)
    for built in (course.cache_dir() / "kernels").glob("bench_kernel_*.mojoc"):
        built.unlink()
    for path, data in kept.items():
        path.write_bytes(data)
    return report


def print_edit_loop(report: dict) -> None:
    for key, run in report.items():
        if isinstance(run, dict):
            if run["finished"]:
                print(
                    f"  {key}: {run['wall_s']:.1f} s wall, compile reported "
                    f"{run['compile_reported_s']} s, passed {run['passed']}"
                )
            else:
                print(f"  {key}: not finished within {run['timeout_s']:.0f} s")


def edit_loop_passed(report: dict) -> bool:
    """Whether every finished check of ``report`` passed."""
    return all(
        run.get("passed", True)
        for run in report.values()
        if isinstance(run, dict) and run["finished"]
    )


# --------------------------------------------------------------------------- main


def about(source: Path, repeats: int) -> dict:
    """What a kernel benchmark's JSON says first: the machine, its load, the file, repeats."""
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "device": "cpu",
        "load_average_at_start": list(os.getloadavg()),
        "file": str(source.relative_to(ROOT) if ROOT in source.parents else source),
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=ROOT / "solutions" / "solution_15.mojo")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per measurement")
    parser.add_argument("--cold", action="store_true", help="also check with empty caches")
    parser.add_argument("--cold-timeout", type=float, default=600.0)
    parser.add_argument("--no-edit-loop", action="store_true", help="time GELU only")
    parser.add_argument("--json", help="write the results here ('-': stdout)")
    args = parser.parse_args(argv)
    source = args.file.resolve()

    from gpt2 import runtime

    runtime.quiet_max()
    result = {**about(source, args.repeats), "width": WIDTH}
    print(f"GELU on float32 [n, {WIDTH}], {args.repeats} calls each ({result['machine']}):")
    result["gelu"] = time_gelu(source, args.repeats)
    labels = ("numpy", "Mojo kernel", "MAX gelu(tanh)")
    print(f"{'n':>5} " + " ".join(f"{label:>16}" for label in labels) + "   (µs, median)")
    for row in result["gelu"]["rows"]:
        print(f"{row['rows']:>5} " + " ".join(f"{row[label]['us']:>16.1f}" for label in labels))
    for label, seconds in result["gelu"]["compile_s"].items():
        print(f"  {label}: {seconds:.1f} s")
    if not args.no_edit_loop:
        print("python -m checks 15 --file X, as a learner runs it:")
        result["edit_loop"] = edit_loop(15, source, args.cold, args.cold_timeout)
        print_edit_loop(result["edit_loop"])
    if args.json:
        text = json.dumps(result, indent=1, ensure_ascii=False) + "\n"
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
            print(f"wrote {args.json}")
    ok = result["gelu"]["all_agree"] and edit_loop_passed(result.get("edit_loop", {}))
    if not ok:
        print("FAILED: a GELU disagreed with the formula, or a check did not pass", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
