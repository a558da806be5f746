"""A newcomer's first minutes, timed: README's set-up line, as written, then the first check.

    python benchmarks/newcomer.py [--worktree] [--json out.json]

In a temporary folder it clones the course (``--worktree``: copies this working tree,
uncommitted changes included), runs README's pip set-up line exactly as README.md gives it
(read by ``.ci/readme_lines.py``, the lines CI runs), with the pip that ``python3 -m venv``
bundles, then the first check README names, with an empty MAX cache and an empty home, as on
a fresh machine. It reports both wall times and what the check answered; the folder is
deleted after. The package downloads are the registry's (their speed is the network's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_lines(course: Path) -> tuple[str, str]:
    def line(n: int) -> str:
        out = subprocess.run(
            [sys.executable, ".ci/readme_lines.py", "pip set-up", str(n)],
            cwd=course,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out.splitlines()[-1]

    return line(1), line(2)


def timed(command: str, course: Path, env: dict[str, str]) -> tuple[float, int, str]:
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "-c", command], cwd=course, env=env, capture_output=True, text=True
    )
    return time.monotonic() - started, result.returncode, result.stdout + result.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worktree", action="store_true", help="copy the working tree")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    load_at_start = list(os.getloadavg())  # the machine may be shared: say how busy it was
    tmp = Path(tempfile.mkdtemp(prefix="gpt2-newcomer-"))
    try:
        course = tmp / "course"
        if args.worktree:
            ignore = shutil.ignore_patterns(".venv*", ".cache", "__pycache__", "book/build")
            shutil.copytree(ROOT, course, ignore=ignore)
        else:
            subprocess.run(["git", "clone", "-q", str(ROOT), str(course)], check=True)
        (tmp / "home").mkdir()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("VIRTUAL_ENV", "GPT2_CHECKS", "PYTHON"))
        }
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
        )
        env.update(HOME=str(tmp / "home"), MODULAR_CACHE_DIR=str(tmp / "modular-cache"))
        setup, first_check = readme_lines(course)
        pip = subprocess.run(
            ["bash", "-c", "python3 -m venv /tmp/probe-venv-$$ && /tmp/probe-venv-$$/bin/pip "
             "--version && rm -rf /tmp/probe-venv-$$"],
            env=env, capture_output=True, text=True,
        ).stdout.split(" from ")[0]  # fmt: skip
        print(f"$ {setup}", flush=True)
        setup_s, setup_code, setup_out = timed(setup, course, env)
        print(f"  {setup_s:.0f} s, exit {setup_code}", flush=True)
        if setup_code != 0:
            print(setup_out[-3000:])
            return 1
        print(f"$ {first_check}", flush=True)
        check_s, check_code, check_out = timed(
            f". .venv/bin/activate && {first_check}", course, env
        )
        print(check_out)
        print(f"  {check_s:.1f} s, exit {check_code}", flush=True)
        report = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "load_average_at_start": load_at_start,
            "bundled_pip": pip,
            "setup_line": setup,
            "setup_s": round(setup_s, 1),
            "first_check": first_check,
            "first_check_s": round(check_s, 1),
            "first_check_exit": check_code,
            "first_check_answered": "NOT STARTED step 06" in check_out,
        }
        if args.json:
            args.json.write_text(json.dumps(report, indent=1) + "\n")
        return 0 if setup_code == 0 and report["first_check_answered"] else 1
    finally:
        subprocess.run(["pkill", "-f", str(tmp)], check=False)  # the check's warm-up
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
