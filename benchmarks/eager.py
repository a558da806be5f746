"""What an eager MAX operation costs: the first time on a machine, then warm, and with
Python's default Ctrl-C handler in place of a plain one.

    python benchmarks/eager.py [--json book/data/eager-cpu.json]

Each measurement runs in a fresh Python process (this script runs itself with
``--measure``), on the CPU, float32:

* **First use**: with an empty MAX cache (a temporary ``MODULAR_CACHE_DIR``), a few of the
  operations the chapters use, each run eagerly on small tensors: the seconds of its first
  run (MAX compiles its kernel for this machine) and of its second.
* **The Ctrl-C handler**: one eager addition of two [4, 4] tensors, the median of
  ``--repeats`` warm runs, with the handler Python installs (as a script of your own has
  it) and with a plain one (as the course installs, ``gpt2.runtime.quiet_max``). On Python
  3.11 and 3.12 the default handler makes every eager operation format its results as
  text (the troubleshooting page says why); 3.13 does not.

The book's setup, checks and troubleshooting pages quote this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPS = ("add", "matmul", "exp", "softmax", "layer_norm")


def _op(name: str):
    from max.experimental import functional as F

    return {
        "add": lambda a, b: a + b,
        "matmul": lambda a, b: a @ b,
        "exp": lambda a, b: F.exp(a),
        "softmax": lambda a, b: F.softmax(a),
        "layer_norm": lambda a, b: F.layer_norm(a, b[0], b[1], 1e-5),
    }[name]


def measure(what: str, repeats: int) -> dict:
    """In this process: ``first-use`` or ``default-handler`` / ``plain-handler``."""
    import numpy as np

    if what == "default-handler":  # Python's own (a process started in the background has
        signal.signal(signal.SIGINT, signal.default_int_handler)  # SIGINT ignored instead)
    else:  # the first use is timed as the course runs it

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, stop)
    from max.experimental.tensor import Tensor

    a = Tensor.from_dlpack(np.ones((4, 4), np.float32))
    b = Tensor.from_dlpack(np.full((4, 4), 2.0, np.float32))

    def run(op) -> float:
        started = time.perf_counter()
        op(a, b).to_numpy()
        return time.perf_counter() - started

    if what == "first-use":
        return {name: {"first_s": run(_op(name)), "second_s": run(_op(name))} for name in OPS}
    add = _op("add")
    for _ in range(3):
        run(add)
    times = [run(add) for _ in range(repeats)]
    q1, median, q3 = statistics.quantiles(times, n=4)
    return {"s": median, "q1_s": q1, "q3_s": q3}


def in_fresh_process(what: str, repeats: int, env: dict) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--measure", what, "--repeats", str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", help="write the results here ('-': stdout)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeats)))
        return 0
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "load_average_at_start": list(os.getloadavg()),
        "repeats": args.repeats,
    }
    env = {**os.environ, "TQDM_DISABLE": "1"}
    with tempfile.TemporaryDirectory() as empty:
        print("first use, an empty MAX cache …", flush=True)
        result["first_use"] = in_fresh_process("first-use", 1, {**env, "MODULAR_CACHE_DIR": empty})
    for name, run in result["first_use"].items():
        print(f"  {name}: first {run['first_s']:.1f} s, then {run['second_s']:.3f} s")
    for what in ("default-handler", "plain-handler"):
        result[what] = in_fresh_process(what, args.repeats, env)
        print(f"an eager addition, {what}: {result[what]['s']:.4f} s (median)")
    if args.json:
        text = json.dumps(result, indent=1) + "\n"
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)
            print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
