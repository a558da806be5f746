"""`python -m checks watch` re-checks the step whose file is saved, until Ctrl-C.

Starts the watch in a subprocess on a throw-away copy of the course, saves step files there,
reads the re-runs from its output, then sends SIGINT as Ctrl-C would.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from checker_helpers import ROOT, assert_clean, copy_repo, env_for

# Compiles graphs the default run does not (minutes on a machine that has not compiled
# them before); run with -m slow.
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="SIGINT as Ctrl-C is POSIX"),
    pytest.mark.slow,
]


class Watch:
    def __init__(self, root):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "checks", "watch", "--time-limit", "30"],
            cwd=root,
            env=env_for(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, needle: str, after: int = 0, timeout: float = 600) -> int:
        """Index of the first line from ``after`` on that contains ``needle``."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(after, len(self.lines)):
                if needle in self.lines[i]:
                    return i
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and self._queue.empty():
                raise AssertionError(f"no {needle!r} in the watch's output:\n{self.text}")
            try:
                self.lines.append(self._queue.get(timeout=min(left, 0.5)))
            except queue.Empty:
                pass

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.lines.append(self._queue.get(timeout=0.1))
            except queue.Empty:
                pass

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_watch_checks_the_saved_step_then_stops_cleanly_on_ctrl_c(tmp_path):
    root = copy_repo(tmp_path / "course")
    watch = Watch(root)
    try:
        # At start: the first step that does not pass yet.
        ready = watch.wait_for("Watching steps/")
        start = "\n".join(watch.lines[:ready])
        assert "Step 01 · Model configuration" in start
        assert "NOT STARTED step 01" in start

        # Saving step 04 checks step 04.
        (root / "steps" / "step_04.py").write_text(
            (ROOT / "solutions" / "solution_04.py").read_text()
        )
        at = watch.wait_for("steps/step_04.py changed: checking step 04", ready)
        passed = watch.wait_for("PASSED step 04", at)
        watch.wait_for("Step 04 passes. Next: step 05", passed)
        ready = watch.wait_for("Watching steps/", passed)

        # Another file in steps/ is not a step: no run.
        (root / "steps" / "notes.txt").write_text("remember the bias\n")
        watch.drain(3.0)
        assert not any("changed: checking" in line for line in watch.lines[ready:]), watch.text

        # A broken save of step 05 gives step 05's report, and the watch goes on.
        source = (ROOT / "solutions" / "solution_05.py").read_text()
        (root / "steps" / "step_05.py").write_text(
            source.replace("(config.vocab_size", "(config.vocab_size,,", 1)
        )
        at = watch.wait_for("steps/step_05.py changed: checking step 05", ready)
        failed = watch.wait_for("FAILED step 05", at)
        assert "Python cannot read your file" in "\n".join(watch.lines[at:failed])
        ready = watch.wait_for("Watching steps/", failed)

        # Ctrl-C: exit status 0, a short goodbye, no traceback.
        watch.proc.send_signal(signal.SIGINT)
        code = watch.proc.wait(timeout=30)
        watch.drain(0.5)
        assert code == 0, watch.text
        assert "Stopped watching." in watch.text
        assert_clean(watch.text)
    finally:
        watch.stop()
