"""GPT-2 at its real size (124M parameters) builds lazily, compiles on the CPU, and computes
HuggingFace's logits. Random seeded weights: nothing is downloaded.

Minutes long (mostly the compile), so marked ``slow``: ``pytest -m slow tests/test_full_size.py``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from gpt2 import runtime

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_gpt2_small_size_builds_lazily_compiles_and_matches_hf(cpu):
    from max.dtype import DType

    from solutions.solution_01 import GPT2Config
    from solutions.solution_10 import GPT2LMHeadModel
    from solutions.solution_11 import convert_hf_weights

    config = GPT2Config()  # the defaults are GPT-2 small's
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config()).eval()
    weights = convert_hf_weights({k: v.numpy() for k, v in hf.state_dict().items()})
    timings = {}

    started = time.perf_counter()
    with runtime.building(cpu):
        model = GPT2LMHeadModel(config)
    timings["build"] = time.perf_counter() - started
    # Lazily built: no parameter holds data yet, so nothing was initialised.
    assert not any(t.real for _, t in model.parameters)
    shapes = {name: tuple(int(d) for d in t.shape) for name, t in model.parameters}
    assert shapes == {name: array.shape for name, array in weights.items()}
    # Tied: the model holds as many numbers as HF's (which counts the tied matrix once).
    unique = {id(t): t for _, t in model.parameters}.values()
    count = sum(int(np.prod([int(d) for d in t.shape])) for t in unique)
    assert count == sum(p.numel() for p in hf.parameters())

    started = time.perf_counter()
    compiled = runtime.compile_module(
        model, [runtime.tensor_type(cpu, DType.int64, ["batch", "seq"])], weights, cpu
    )
    timings["compile"] = time.perf_counter() - started

    ids = np.random.default_rng(0).integers(0, config.vocab_size, size=(2, 9), dtype=np.int64)
    started = time.perf_counter()
    logits = runtime.to_numpy(compiled(runtime.to_tensor(ids, cpu)))
    timings["run"] = time.perf_counter() - started
    with torch.no_grad():
        expected = hf(torch.from_numpy(ids)).logits.numpy()

    print("GPT-2 124M on CPU:", ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    assert logits.shape == (2, 9, config.vocab_size)
    np.testing.assert_allclose(logits, expected, atol=1e-3, rtol=1e-4)
