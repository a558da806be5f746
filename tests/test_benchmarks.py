"""The benchmarks run as documented: `benchmarks/generate.py` fails loudly when the ids
disagree, kernels.py's GELU runners agree with float64, eager.py's timing process answers.

On the tiny fixture checkpoint (a few tokens, one repeat), so it takes seconds; the
figures themselves are measured at full size and recorded in book/data.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from gpt2 import course

ROOT = course.ROOT
TINY = ROOT / "checks" / "data" / "tiny-gpt2"
QUICK = ["--model", str(TINY), "--prompt-tokens", "5", "--new-tokens", "6", "9", "--repeats",
         "1", "--no-cold"]  # fmt: skip


def test_generate_benchmark_reports_every_runner_with_hf_ids():
    result = subprocess.run(
        [sys.executable, "benchmarks/generate.py", *QUICK, "--json", "-"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout[result.stdout.index("{\n") :])
    assert report["lengths"] == [6, 9] and report["prompt_tokens"] == 5
    short, long = report["runs"]["6"], report["runs"]["9"]
    assert set(short["tokens_per_second"]) == {
        "HuggingFace generate (PyTorch)",
        "ours: generate_cached (step 13)",
        "ours: fast decode (gpt2.fast)",
        "ours: gpt2.fast, one token per run",
        "ours: generate (step 12)",
    }
    assert set(long["tokens_per_second"]) == set(short["tokens_per_second"]) - {
        "ours: generate (step 12)"  # the shortest length only: it grows with the square
    }
    for run in (short, long):
        assert all(rate > 0 for rate in run["tokens_per_second"].values())
        assert all(run["same_ids_as_hf"].values())
        assert 0 <= run["guesses_kept"]["kept"] <= run["guesses_kept"]["guessed"] > 0
    assert set(report["decode_step_ms"]) == {"16", "63"}  # the tiny model has 64 positions
    assert report["floor"]["matrices"] == 2 * 4 + 1 and report["floor"]["tokens_per_second"] > 0
    assert report["peak_memory_mb"] > 0 and report["peak_memory_mb_huggingface"] > 0
    assert "generate_cached / generate:" in result.stdout


def test_generate_benchmark_exits_non_zero_when_ids_differ(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "benchmarks/generate.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from solutions import solution_13

    real = solution_13.generate_cached

    def off_by_one(model, prompt, n, **kwargs):  # a generation that picks other ids
        return [token + 1 for token in real(model, prompt, n, **kwargs)]

    monkeypatch.setattr(solution_13, "generate_cached", off_by_one)
    assert bench.main([*QUICK, "--skip-uncached"]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.err
    assert "NO" in captured.out


def test_kernels_benchmark_times_the_reference_kernel_against_maxs_gelu(tmp_path):
    """benchmarks/kernels.py (GELU only, a few calls): every runner agrees with float64."""
    import json
    import subprocess
    import sys

    from checker_helpers import ROOT

    out = tmp_path / "kernels.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/kernels.py", "--no-edit-loop", "--repeats", "5",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Mojo kernel" in result.stdout and "MAX gelu(tanh)" in result.stdout
    assert json.loads(out.read_text())


@pytest.mark.parametrize("handler", ["default-handler", "plain-handler"])
def test_eager_benchmark_times_an_addition_under_each_handler(handler):
    """benchmarks/eager.py's measuring process (a few warm additions) answers with its
    median and quartiles, in seconds."""
    import json
    import subprocess
    import sys

    from checker_helpers import ROOT

    result = subprocess.run(
        [sys.executable, "benchmarks/eager.py", "--measure", handler, "--repeats", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    timing = json.loads(result.stdout.splitlines()[-1])
    assert 0 < timing["q1_s"] <= timing["s"] <= timing["q3_s"]
