"""A learner never waits for MAX in vain, and correct code is never blamed for MAX's compile time.

The time limit guards the learner's Python, not MAX's compiler: these tests point MAX's cache
(``MODULAR_CACHE_DIR``) and the checker's (``GPT2_CHECKS_CACHE``) at empty folders, so that
every kernel is compiled on the spot, and give the learner's code a few seconds only. Correct
code passes however long MAX compiles; a loop that never ends is still stopped.

The warm-up is tested here too, on what can be shown in seconds;
``benchmarks/cold_start.py`` measures the whole first hour of a learner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from checker_helpers import ROOT, assert_clean, env_for

# The ways of building a mask that a learner writes from the chapter: arange, greater, where.
WHERE_MASK = """
from max.experimental import functional as F
from max.experimental.tensor import Tensor
from max.dtype import DType


def causal_mask(seq_len, past_len=0, *, dtype, device):
    rows = Tensor.arange(seq_len, dtype=DType.int64, device=device).reshape([seq_len, 1])
    cols = Tensor.arange(past_len + seq_len, dtype=DType.int64, device=device)
    hidden = F.greater(cols.reshape([1, past_len + seq_len]), rows + past_len)
    shape = [seq_len, past_len + seq_len]
    return F.where(hidden, Tensor.full(shape, float("-inf"), dtype=dtype, device=device),
                   Tensor.zeros(shape, dtype=dtype, device=device))
"""

ENDLESS_EAGER = """
from max.experimental.tensor import Tensor


def causal_mask(seq_len, past_len=0, *, dtype, device):
    mask = Tensor.zeros([seq_len, past_len + seq_len], dtype=dtype, device=device)
    while True:
        mask = mask + 0.0
        mask.to_numpy()
"""

MLP = (ROOT / "solutions" / "solution_04.py").read_text()
MLP_RETURN = "        return self.c_proj(hidden_states)\n"


def cold_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a learner's first check on a fresh machine: empty MAX and checker
    caches, no warm-up in the background."""
    env = env_for(ROOT)
    env["MODULAR_CACHE_DIR"] = str(tmp_path / "modular")
    env["GPT2_CHECKS_CACHE"] = str(tmp_path / "checks-cache")
    env["GPT2_CHECKS_WARMUP"] = "0"
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], timeout: float = 1200):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "checks", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return result, time.monotonic() - started


def test_correct_code_passes_however_long_max_compiles(tmp_path):
    """A correct F.where mask with a 3 s limit, on an empty MAX cache: MAX compiles its kernels
    for far longer than 3 s, the check waits for it, says so, and passes."""
    path = tmp_path / "step_02.py"
    path.write_text(WHERE_MASK)
    result, seconds = run(["02", "--file", str(path), "--time-limit", "3"], cold_env(tmp_path))
    out = result.stdout
    assert_clean(out)
    assert result.returncode == 0, out
    assert "PASSED step 02" in out
    assert seconds > 3  # it did compile (far longer than the limit) and was not stopped
    assert "MAX is compiling kernels for this step, first time only" in out
    assert "did not finish" not in out


def test_an_endless_eager_loop_is_stopped_on_a_cold_cache(tmp_path):
    """The learner's own loop is held to the limit, even while MAX's first compiles of the
    very ops it calls do not count."""
    path = tmp_path / "step_02.py"
    path.write_text(ENDLESS_EAGER)
    result, _seconds = run(["02", "--file", str(path), "--time-limit", "3"], cold_env(tmp_path))
    out = result.stdout
    assert_clean(out)
    assert result.returncode == 1, out
    assert "Your code did not finish within 3 s while evaluating causal_mask" in out
    assert "mask = mask + 0.0" in out or "mask.to_numpy()" in out  # where it was


def test_an_endless_forward_is_stopped_on_a_cold_cache(tmp_path):
    source = MLP.replace(
        MLP_RETURN, "        while True:\n            hidden_states = hidden_states\n"
    )
    path = tmp_path / "step_04.py"
    path.write_text(source)
    result, seconds = run(["04", "--file", str(path), "--time-limit", "3"], cold_env(tmp_path))
    out = result.stdout
    assert_clean(out)
    assert result.returncode == 1, out
    assert "did not finish within 3 s while tracing GPT2MLP.forward" in out
    assert seconds < 120


# --------------------------------------------------------------------------- the clock


def test_the_learner_clock_stops_while_max_compiles():
    from checks.learner import Clock

    clock = Clock()
    clock.enter("evaluating")
    assert clock.overdue(0.25) is None
    clock.compile(True)
    time.sleep(0.4)  # compiling: none of it counts
    assert clock.overdue(0.25) is None
    clock.compile(False)
    assert clock.overdue(0.25) is None  # the learner has had (almost) no time yet
    time.sleep(0.4)
    assert clock.overdue(0.25) == "evaluating"  # now the learner's own time is up
    clock.leave()
    assert clock.overdue(0.25) is None  # nothing of the learner's runs


# --------------------------------------------------------------------------- the warm-up


def warm_env(tmp_path: Path) -> dict[str, str]:
    env = env_for(ROOT)
    env["GPT2_CHECKS_CACHE"] = str(tmp_path / "checks-cache")
    env.pop("GPT2_CHECKS_WARMUP", None)
    return env


def check_reference_01(env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    """`python -m checks 01 FLAGS --file solutions/solution_01.py` with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "checks", "01", *flags, "--file", str(SOLUTION_01)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


SOLUTION_01 = ROOT / "solutions" / "solution_01.py"


def test_a_second_warm_up_does_not_start_while_one_runs(tmp_path, monkeypatch):
    """One lock: a background warm-up started while another runs exits at once, and a
    foreground one follows the running one instead of compiling twice."""
    monkeypatch.setenv("GPT2_CHECKS_CACHE", str(tmp_path / "checks-cache"))
    from checks import warmup

    env = warm_env(tmp_path)
    with warmup._lock() as mine:
        assert mine
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "checks", "warm", "--background"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 0
        assert time.monotonic() - started < 60
        assert not (tmp_path / "checks-cache" / "warmup" / "state.json").exists()  # did nothing
        follower = subprocess.Popen(
            [sys.executable, "-m", "checks", "warm"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(3)
        assert follower.poll() is None  # following the running warm-up
    out, _ = follower.communicate(timeout=60)  # the lock is free: it stops following
    assert "already running in the background" in out
    assert follower.returncode == 0


def test_the_warm_up_resumes_where_it_was_killed(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2_CHECKS_CACHE", str(tmp_path / "checks-cache"))
    monkeypatch.setenv("GPT2_CHECKS_WARMUP_JOBS", "1")
    from checks import warmup

    ran: list[str] = []

    def run(name: str, _device: str, _log, crash: str = "") -> int:
        ran.append(name)
        if name == crash:
            raise KeyboardInterrupt  # killed mid-task
        return 0

    with pytest.raises(KeyboardInterrupt):
        warmup.work("cpu", tasks=("a", "b", "c"), run=lambda *a: run(*a, crash="b"))
    assert ran == ["a", "b"]
    assert warmup.State.load().done == ["a"]

    ran.clear()
    state = warmup.work("cpu", tasks=("a", "b", "c"), run=run)
    assert ran == ["b", "c"]  # a is not done twice
    assert state.done == ["a", "b", "c"] and state.finished
    assert "done" in warmup.status().line()


def test_the_warm_up_can_be_turned_off(tmp_path):
    env = warm_env(tmp_path)
    env["GPT2_CHECKS_WARMUP"] = "0"
    result = check_reference_01(env)
    assert result.returncode == 0, result.stdout
    assert not (tmp_path / "checks-cache" / "warmup").exists()
    result = check_reference_01(warm_env(tmp_path), "--no-warmup")
    assert result.returncode == 0, result.stdout
    assert not (tmp_path / "checks-cache" / "warmup").exists()


def test_a_check_starts_the_warm_up_in_the_background(tmp_path):
    """The first check starts it, without waiting for it: the check of step 01 is done in
    seconds, while the warm-up, a process of its own, goes on (and is stopped here)."""
    env = warm_env(tmp_path)
    started = time.monotonic()
    result = check_reference_01(env)
    assert result.returncode == 0, result.stdout
    assert time.monotonic() - started < 60
    state_file = tmp_path / "checks-cache" / "warmup" / "state.json"
    log = tmp_path / "checks-cache" / "warmup" / "warmup.log"
    deadline = time.monotonic() + 60
    while not state_file.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        assert state_file.exists(), log.read_text() if log.exists() else "no log"
        assert json.loads(state_file.read_text())["started"] > 0
        assert "warm-up started" in log.read_text()
    finally:
        _stop_warm_ups(env)


def _stop_warm_ups(env: dict[str, str]) -> None:
    """Stop the background warm-ups whose environment names this test's cache."""
    cache = env["GPT2_CHECKS_CACHE"]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"warm" in cmd and f"GPT2_CHECKS_CACHE={cache}".encode() in environ:
            try:
                os.killpg(int(proc.name), 9)
            except OSError:
                pass


def test_status_line_when_nothing_has_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GPT2_CHECKS_CACHE", str(tmp_path / "checks-cache"))
    from checks import warmup

    status = warmup.status()
    assert not status.running and not status.finished and not status.done
    assert "not started" in status.line()
