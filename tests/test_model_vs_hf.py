"""Steps 07–10 put together: our GPT2LMHeadModel computes HuggingFace's logits.

A tiny ``transformers.GPT2LMHeadModel`` with seeded random weights is the reference. Its
state dict goes through step 11's ``convert_hf_weights`` into ``solutions.solution_10``'s
model, compiled with MAX on the CPU; the logits must agree for several batch sizes and
sequence lengths. Nothing here is typed in: every expected number comes from transformers.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpt2 import runtime

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SMALL = dict(vocab_size=97, n_positions=40, n_embd=48, n_layer=2, n_head=4)
SHAPES = [(2, 1), (3, 5), (2, 17), (2, 40)]  # (batch, seq); 40 is the whole context
ATOL = 1e-4


@pytest.fixture(scope="module")
def hf_model():
    """A seeded HF GPT-2 whose weights are all far from their initial values.

    HF initialises biases to 0 and LayerNorm gains to 1; a bias or gain that our model
    dropped would go unnoticed with those, so every tensor is redrawn here.
    """
    config = transformers.GPT2Config(**SMALL)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if param.ndim == 1 and "ln" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.2 * noise)  # a LayerNorm gain
            elif param.ndim == 1:
                param.copy_(0.1 * noise)  # a bias
            else:
                param.copy_(noise / param.shape[0] ** 0.5)
    assert model.lm_head.weight is model.transformer.wte.weight  # HF ties them too
    return model


@pytest.fixture(scope="module")
def converted(hf_model):
    from solutions.solution_11 import convert_hf_weights

    return convert_hf_weights({k: v.numpy() for k, v in hf_model.state_dict().items()})


@pytest.fixture(scope="module")
def ours(cpu):
    from max.dtype import DType

    from solutions.solution_01 import GPT2Config
    from solutions.solution_10 import GPT2LMHeadModel

    with runtime.building(cpu):
        model = GPT2LMHeadModel(GPT2Config(**SMALL))
    types = [runtime.tensor_type(cpu, DType.int64, ["batch", "seq"])]
    return model, types


def _hf_logits(hf_model, ids: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return hf_model(torch.from_numpy(ids)).logits.numpy()


def _ids(batch: int, seq: int) -> np.ndarray:
    rng = np.random.default_rng(batch * 100 + seq)
    return rng.integers(0, SMALL["vocab_size"], size=(batch, seq), dtype=np.int64)


def test_parameter_names_are_the_converted_checkpoints(ours, converted):
    model, _ = ours
    shapes = {name: tuple(int(d) for d in t.shape) for name, t in model.parameters}
    assert shapes == {name: array.shape for name, array in converted.items()}


def test_lm_head_is_tied_to_wte(ours):
    model, _ = ours
    assert model.lm_head.weight is model.transformer.wte.weight


def test_logits_equal_hf(cpu, ours, converted, hf_model):
    model, types = ours
    compiled = runtime.compile_module(model, types, converted, cpu)
    for batch, seq in SHAPES:
        ids = _ids(batch, seq)
        logits = runtime.to_numpy(compiled(runtime.to_tensor(ids, cpu)))
        expected = _hf_logits(hf_model, ids)
        assert logits.shape == (batch, seq, SMALL["vocab_size"])
        np.testing.assert_allclose(logits, expected, atol=ATOL, rtol=0, err_msg=f"{batch}x{seq}")
        assert np.array_equal(logits.argmax(-1), expected.argmax(-1)), f"{batch}x{seq}"


def test_compiled_graph_reads_the_tied_matrix_once(cpu, ours, converted, hf_model):
    """The graph takes the head's weight from ``transformer.wte.weight``: a different
    ``lm_head.weight`` in the registry changes nothing. (Same graph, so no new compile.)"""
    model, types = ours
    weights = dict(converted)
    weights["lm_head.weight"] = np.zeros_like(converted["lm_head.weight"])
    compiled = runtime.compile_module(model, types, weights, cpu)
    ids = _ids(2, 9)
    logits = runtime.to_numpy(compiled(runtime.to_tensor(ids, cpu)))
    np.testing.assert_allclose(logits, _hf_logits(hf_model, ids), atol=ATOL, rtol=0)


def test_a_longer_prefix_does_not_change_earlier_logits(cpu, ours, converted):
    """Causality end to end: appending tokens leaves the logits of the earlier ones alone."""
    model, types = ours
    compiled = runtime.compile_module(model, types, converted, cpu)
    ids = _ids(2, 12)
    full = runtime.to_numpy(compiled(runtime.to_tensor(ids, cpu)))
    prefix = runtime.to_numpy(compiled(runtime.to_tensor(np.ascontiguousarray(ids[:, :5]), cpu)))
    np.testing.assert_allclose(prefix, full[:, :5], atol=ATOL, rtol=0)
