"""Rewrite each chapter's pasted pass ("A pass:") from a real run of its check.

    python scripts/pass_transcripts.py [NN ...]

For each step (default: every step but 14, whose check starts a server for minutes), runs
``python -m checks NN --file solutions/solution_NN.py`` as a learner would, and puts its
output in place of the chapter's ``text`` block that starts with ``Step NN ·`` and ends with
``PASSED step NN``. Nothing else in the chapter changes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpt2 import course  # noqa: E402


def transcript(number: int) -> str:
    env = {**os.environ, "COLUMNS": "3000", "GPT2_CHECKS_WARMUP": "0"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "checks",
            f"{number:02d}",
            "--file",
            f"solutions/solution_{number:02d}.py",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # MAX's compile notices, if any
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"step {number:02d}'s reference did not pass:\n{result.stdout}")
    return result.stdout


def main(argv: list[str]) -> int:
    numbers = [int(n) for n in argv] or [n for n in course.numbers() if n != 14]
    for number in numbers:
        chapter = course.chapter_file(number)
        text = chapter.read_text()
        block = re.compile(
            rf"```text\nStep {number:02d} · .*?PASSED step {number:02d}[^\n]*\n```", re.S
        )
        if not block.search(text):
            print(f"step {number:02d}: the chapter pastes no pass; skipped")
            continue
        new = "```text\n" + transcript(number) + "```"
        chapter.write_text(block.sub(lambda _m, new=new: new, text, count=1))
        print(f"step {number:02d}: {chapter.relative_to(ROOT)} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
