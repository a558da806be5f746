"""How long a learner waits for `python -m checks 6`, against the floor any check pays.

The floor is `python -c "import max.experimental.nn"`: starting Python and importing MAX.
"Warm" means MAX's kernels and the checker's compiled graphs are cached (every run after the
first); "cold" empties both caches first, as on a learner's very first check.

    python benchmarks/check_latency.py [--runs 5] [--cold] [--step 6] [--json FILE]

README's figure is the run recorded in book/data/check-latency-cpu.json.
"""

from __future__ import annotations

import argparse
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


def timed(cmd: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        cmd, cwd=ROOT, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--step", default="6")
    parser.add_argument("--cold", action="store_true", help="also time one run with empty caches")
    parser.add_argument("--json", type=Path, help="write the runs here")
    args = parser.parse_args()
    load_at_start = list(os.getloadavg())  # the machine may be shared: say how busy it was

    py = sys.executable
    check = [
        py,
        "-m",
        "checks",
        args.step,
        "--file",
        str(ROOT / "solutions" / f"solution_{int(args.step):02d}.py"),
        "--device",
        "cpu",
    ]
    floor_code = "import max.experimental.nn"
    floor_cmd = [py, "-c", floor_code]
    floor_name, warm_name = f"floor: {floor_code}", f"warm: python -m checks {args.step}"

    results: dict[str, list[float]] = {}
    if args.cold:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "GPT2_CHECKS_CACHE": f"{tmp}/checks",
                "MODULAR_CACHE_DIR": f"{tmp}/modular",
            }
            results["cold check"] = [timed(check, env)]

    timed(check)  # make sure the caches are warm
    results[floor_name] = [timed(floor_cmd) for _ in range(args.runs)]
    results[warm_name] = [timed(check) for _ in range(args.runs)]

    floor = statistics.median(results[floor_name])
    if args.json:
        record = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "load_average_at_start": load_at_start,
            "step": args.step,
            "floor": f'python -c "{floor_code}"',
            "check": f"python -m checks {args.step}",
            "floor_s": results[floor_name],
            "warm_check_s": results[warm_name],
            "cold_check_s": results.get("cold check"),
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{'what':40s} {'median s':>9s} {'min s':>7s} {'× floor':>8s}  runs")
    for name, times in results.items():
        med = statistics.median(times)
        print(f"{name:40s} {med:9.2f} {min(times):7.2f} {med / floor:8.2f}  {len(times)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
