"""`python -m gpt2`: the text it prints is the model's, and every failure is one clear message.

The CLI runs as a user runs it, in a subprocess, on the tiny fixture checkpoint (with its
own small BPE tokenizer), so nothing is downloaded. The expected text comes from
HuggingFace: its greedy ids, decoded by the same tokenizer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from hub_cache import fill_hub_cache, offline_env

from gpt2 import course

ROOT = course.ROOT
TINY = ROOT / "checks" / "data" / "tiny-gpt2"
PROMPT = "The tiny model"


def gpt2(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gpt2", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_friendly(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr + result.stdout
    assert any(line.startswith("✗") for line in result.stderr.splitlines())


@pytest.fixture(scope="module")
def expected_text():
    pytest.importorskip("torch")
    import torch
    from tokenizers import Tokenizer
    from transformers import GPT2LMHeadModel

    tokenizer = Tokenizer.from_file(str(TINY / "tokenizer.json"))
    hf = GPT2LMHeadModel.from_pretrained(str(TINY)).eval()
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    prompt = tokenizer.encode(PROMPT).ids
    with torch.no_grad():
        ids = torch.tensor([prompt])  # an explicit mask: pad id 0 is a real token here
        out = hf.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False
        )
    return PROMPT + tokenizer.decode(out[0, len(prompt) :].tolist()) + "\n"


def test_greedy_text_is_huggingfaces(expected_text):
    result = gpt2("--model", str(TINY), "--temperature", "0", "--max-new-tokens", "20", PROMPT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_text
    assert "tokens/s" in result.stderr


def test_without_the_cache_the_text_is_the_same(expected_text):
    result = gpt2(
        "--model", str(TINY), "--temperature", "0", "--max-new-tokens", "20", "--no-cache", PROMPT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_text


def test_fast_writes_the_same_text(expected_text):
    result = gpt2(
        "--model", str(TINY), "--temperature", "0", "--max-new-tokens", "20", "--fast", PROMPT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_text


def test_fast_sampling_with_a_seed_is_the_caches_text():
    args = ("--model", str(TINY), "--max-new-tokens", "15", "--temperature", "1.0", "--seed", "5")
    cached, fast = gpt2(*args, PROMPT), gpt2(*args, "--fast", PROMPT)
    assert cached.returncode == fast.returncode == 0, fast.stderr
    assert fast.stdout == cached.stdout


def test_fast_without_a_cache_is_refused_before_loading():
    result = gpt2("--model", str(TINY), "--fast", "--no-cache", PROMPT)
    assert result.returncode == 2
    assert_friendly(result)
    assert "--no-cache" in result.stderr


def test_a_seed_repeats_the_sampled_text():
    args = (
        "--model",
        str(TINY),
        "--max-new-tokens",
        "15",
        "--temperature",
        "1.0",
        "--seed",
        "5",
        PROMPT,
    )
    first, second = gpt2(*args), gpt2(*args)
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert first.stdout.startswith(PROMPT) and len(first.stdout) > len(PROMPT) + 1


def test_the_default_hub_id_is_read_from_the_hub_cache(expected_text, tmp_path):
    """No --model: the command asks the hub for openai-community/gpt2, as for a real user;
    the cache (filled from the tiny fixture) answers, so nothing is downloaded."""
    cache = fill_hub_cache(
        tmp_path / "hub",
        "openai-community/gpt2",
        TINY,
        ("config.json", "model.safetensors", "tokenizer.json"),
    )
    result = gpt2("--temperature", "0", "--max-new-tokens", "20", PROMPT, env=offline_env(cache))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected_text
    assert "openai-community/gpt2" in result.stderr


def test_offline_hub_id_says_how_to_use_a_local_directory(tmp_path):
    result = gpt2(
        "--model",
        "openai-community/gpt2",
        "Hello",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
        timeout=300,
    )
    assert result.returncode == 1
    assert_friendly(result)
    assert "cannot be downloaded" in result.stderr and "--model" in result.stderr


def test_missing_directory_is_named(tmp_path):
    result = gpt2("--model", str(tmp_path / "nowhere"), "Hello", timeout=300)
    assert result.returncode == 2
    assert_friendly(result)
    assert "nowhere" in result.stderr


def test_a_checkpoint_that_does_not_fit_is_named(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(TINY, broken)
    config = json.loads((broken / "config.json").read_text())
    config["n_embd"] = 64  # no longer the shapes the weights have
    (broken / "config.json").write_text(json.dumps(config))
    result = gpt2("--model", str(broken), "Hello", timeout=300)
    assert result.returncode == 1
    assert_friendly(result)
    assert "shape" in result.stderr


def test_too_long_a_request_is_refused_before_compiling():
    result = gpt2("--model", str(TINY), "--max-new-tokens", "500", "Hello", timeout=300)
    assert result.returncode == 2
    assert_friendly(result)
    assert "context of 64" in result.stderr


def test_mine_says_which_steps_are_yours(tmp_path):
    """With no recorded progress, every step comes from the reference, and it says so."""
    cache = tmp_path / "checks"
    cache.mkdir()
    result = gpt2(
        "--model",
        str(TINY),
        "--temperature",
        "0",
        "--max-new-tokens",
        "5",
        "--mine",
        PROMPT,
        env={"GPT2_CHECKS_CACHE": str(cache)},
    )
    assert result.returncode == 0, result.stderr
    assert "your steps: none" in result.stderr
    assert "reference for steps 01, 02" in result.stderr


def test_mine_uses_a_passing_step_file(tmp_path):
    """In a copy of the course where step 11 is done and checked, --mine runs that file."""
    copy = tmp_path / "course"
    for part in ("checks", "solutions", "steps", "gpt2"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "course.toml", copy / "course.toml")
    shutil.copy(ROOT / "solutions" / "solution_11.py", copy / "steps" / "step_11.py")
    with open(copy / "steps" / "step_11.py", "a") as f:
        f.write("\nprint('learner step 11 imported', file=__import__('sys').stderr)\n")
    cache = tmp_path / "checks-cache"
    cache.mkdir()
    env = {**os.environ, "GPT2_CHECKS_CACHE": str(cache)}
    check = subprocess.run(
        [sys.executable, "-m", "checks", "11"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpt2",
            "--model",
            str(TINY),
            "--temperature",
            "0",
            "--max-new-tokens",
            "5",
            "--mine",
            PROMPT,
        ],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    assert "your steps: 11" in result.stderr
    assert "learner step 11 imported" in result.stderr
    (reference,) = [line for line in result.stderr.splitlines() if "reference for steps" in line]
    assert "01, 02" in reference and "11" not in reference.split(":")[0]


def test_mine_runs_a_passing_attention_kernel_in_the_fast_decode(tmp_path):
    """Where step 16's check passed, `--fast --mine` decodes with the learner's kernel and
    writes what --fast writes with MAX's ops; without --fast it says how to use it."""
    copy = tmp_path / "course"
    for part in ("checks", "solutions", "steps", "gpt2"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "course.toml", copy / "course.toml")
    shutil.copy(ROOT / "solutions" / "solution_16.mojo", copy / "steps" / "step_16.mojo")
    cache = tmp_path / "checks-cache"
    cache.mkdir()
    env = {**os.environ, "GPT2_CHECKS_CACHE": str(cache)}

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    check = run("checks", "16")
    assert check.returncode == 0, check.stdout + check.stderr
    words = ("gpt2", "--model", str(TINY), "--temperature", "0", "--max-new-tokens", "12", PROMPT)
    mine, plain = run(*words, "--fast", "--mine"), run(*words, "--fast")
    assert mine.returncode == 0, mine.stderr
    assert "your attention kernel (step 16) in --fast's one-token decode steps" in mine.stderr
    assert mine.stdout == plain.stdout
    slow = run(*words, "--mine")
    assert slow.returncode == 0, slow.stderr
    assert "add --fast to use it" in slow.stderr


def test_watch_sends_the_learner_to_a_kernel_steps_mojo_file():
    from rich.console import Console

    from checks import watch

    kernel = next(n for n in course.numbers() if course.step(n).kind == course.KERNEL)
    console = Console(record=True, width=300)
    watch._footer(console, [watch.Shown(kernel - 1, True)], course.ROOT / "steps")
    assert f"edit steps/step_{kernel:02d}.mojo" in console.export_text()
