"""Rewrite each chapter's pasted pass ("A pass:") from a real run of its check.

    python scripts/pass_transcripts.py [NN ...]
    python scripts/pass_transcripts.py gpt2      # step 13's `python -m gpt2 --model …` run

For each step (default: every step but 14, whose check starts a server for minutes), runs
``python -m checks NN --file solutions/solution_NN.py`` (``.mojo`` for a kernel step) as a
learner would, and puts its output in place of the chapter's ``text`` block that starts with
``Step NN ·`` and ends with ``PASSED step NN``. Nothing else in the chapter changes. ``gpt2`` reruns the command of step
13's ``$ python -m gpt2 --model checks/data/tiny-gpt2 …`` block and pastes what it printed:
the text (stdout), then the report (stderr).
"""

from __future__ import annotations

import os
import re
import shlex
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
            str(course.solution_file(number).relative_to(ROOT)),  # .mojo for a kernel step
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


GPT2_RUN = re.compile(r"```text\n\$ (python -m gpt2 --model [^\n]*)\n.*?```", re.S)


def gpt2_transcript(command: str) -> str:
    """What ``command`` (a ``python -m gpt2`` line) prints, as a terminal shows it."""
    env = {**os.environ, "COLUMNS": "3000", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, *shlex.split(command)[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{command} failed:\n{result.stderr}")
    return f"$ {command}\n{result.stdout}{result.stderr}"


def rewrite_gpt2_run() -> None:
    chapter = course.chapter_file(13)
    text = chapter.read_text()
    m = GPT2_RUN.search(text)
    if not m:
        raise SystemExit(f"{chapter}: no ```text block starting with $ python -m gpt2 --model")
    new = "```text\n" + gpt2_transcript(m.group(1)) + "```"
    chapter.write_text(text[: m.start()] + new + text[m.end() :])
    print(f"{chapter.relative_to(ROOT)}: the python -m gpt2 run rewritten")


def main(argv: list[str]) -> int:
    if argv == ["gpt2"]:
        rewrite_gpt2_run()
        return 0
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
