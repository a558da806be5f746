"""Steps 01–06: every reference solution equals HuggingFace's GPT-2 component.

The expected values are computed here, by transformers and torch, from the same weights
and inputs; nothing is typed in.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gpt2 import runtime
from tests.conftest import compile_and_run

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers.models.gpt2 import modeling_gpt2  # noqa: E402

# Compiles graphs the default run does not (minutes on a machine that has not compiled
# them before); run with -m slow.
pytestmark = pytest.mark.slow

SMALL = dict(vocab_size=97, n_positions=40, n_embd=48, n_layer=2, n_head=4)


def hf_config(**overrides):
    return transformers.GPT2Config(**{**SMALL, **overrides})


def small_config(**overrides):
    from solutions.solution_01 import GPT2Config

    return GPT2Config(**{**SMALL, **overrides})


def test_config_defaults_equal_transformers():
    from solutions.solution_01 import GPT2Config

    ours = GPT2Config()
    theirs = transformers.GPT2Config()
    fields = [f.name for f in dataclasses.fields(ours)]
    assert len(fields) == 7
    for name in fields:
        assert getattr(ours, name) == getattr(theirs, name), name


@pytest.mark.parametrize("seq_len,past_len", [(1, 0), (5, 0), (3, 4), (1, 7)])
def test_causal_mask_matches_torch_tril(cpu, seq_len, past_len):
    from solutions.solution_02 import causal_mask

    ours = runtime.to_numpy(causal_mask(seq_len, past_len, dtype=cpu.dtype, device=cpu.device))
    # The rule HF GPT-2 applies: query i (at position past_len + i) sees keys j <= past_len + i.
    visible = torch.tril(
        torch.ones(seq_len, past_len + seq_len, dtype=torch.bool), diagonal=past_len
    )
    assert ours.shape == tuple(visible.shape)
    assert np.array_equal(ours == 0, visible.numpy())
    assert np.all(np.isneginf(ours[~visible.numpy()]))


def _random(shape, rng, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def test_layer_norm_matches_torch(cpu):
    from solutions.solution_03 import LayerNorm

    rng = np.random.default_rng(3)
    weights = {"weight": _random((48,), rng, 0.3, 1.0), "bias": _random((48,), rng, 0.2)}
    x = _random((2, 5, 48), rng, 2.0, 0.5)
    with runtime.building(cpu):
        module = LayerNorm(48, eps=1e-5)
    (ours,) = compile_and_run(module, weights, [x], ["batch", "seq", 48], cpu)

    torch_ln = torch.nn.LayerNorm(48, eps=1e-5)  # what HF GPT-2's ln_1/ln_2/ln_f are
    with torch.no_grad():
        torch_ln.weight.copy_(torch.from_numpy(weights["weight"]))
        torch_ln.bias.copy_(torch.from_numpy(weights["bias"]))
        theirs = torch_ln(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)


def test_mlp_matches_hf_gpt2mlp(cpu):
    from solutions.solution_04 import GPT2MLP

    torch.manual_seed(4)
    hf = modeling_gpt2.GPT2MLP(4 * 48, hf_config()).eval()
    # HF's Conv1D stores its weight as [in, out]; MAX's Linear as [out, in].
    weights = {
        "c_fc.weight": hf.c_fc.weight.detach().numpy().T.copy(),
        "c_fc.bias": hf.c_fc.bias.detach().numpy(),
        "c_proj.weight": hf.c_proj.weight.detach().numpy().T.copy(),
        "c_proj.bias": hf.c_proj.bias.detach().numpy(),
    }
    rng = np.random.default_rng(4)
    inputs = [_random((2, 6, 48), rng, 1.5, 0.2), _random((3, 1, 48), rng, 1.5, 0.2)]
    with runtime.building(cpu):
        module = GPT2MLP(4 * 48, small_config())
    ours = compile_and_run(module, weights, inputs, ["batch", "seq", 48], cpu)
    with torch.no_grad():
        theirs = [hf(torch.from_numpy(x)).numpy() for x in inputs]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def hf_model():
    torch.manual_seed(5)
    return modeling_gpt2.GPT2Model(hf_config()).eval()


def test_token_embeddings_match_hf_wte(cpu, hf_model):
    from max.dtype import DType

    from solutions.solution_05 import GPT2TokenEmbeddings

    weights = {"wte.weight": hf_model.wte.weight.detach().numpy()}
    rng = np.random.default_rng(5)
    ids = [rng.integers(0, 97, size=(2, 7)), rng.integers(0, 97, size=(1, 1))]
    with runtime.building(cpu):
        module = GPT2TokenEmbeddings(small_config())
    ours = compile_and_run(module, weights, ids, ["batch", "seq"], cpu, dtype=DType.int64)
    with torch.no_grad():
        theirs = [hf_model.wte(torch.from_numpy(i)).numpy() for i in ids]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_position_embeddings_match_hf_wpe(cpu, hf_model):
    from max.dtype import DType

    from solutions.solution_06 import GPT2PositionEmbeddings

    weights = {"wpe.weight": hf_model.wpe.weight.detach().numpy()}
    positions = [np.arange(7), np.array([39, 0, 12])]
    with runtime.building(cpu):
        module = GPT2PositionEmbeddings(small_config())
    ours = compile_and_run(module, weights, positions, ["seq"], cpu, dtype=DType.int64)
    with torch.no_grad():
        theirs = [hf_model.wpe(torch.from_numpy(p)).numpy() for p in positions]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_embeddings_sum_is_hf_input_to_first_block(cpu, hf_model):
    """wte(ids) + wpe(positions) is exactly what HF feeds its first block (dropout off)."""
    from max.dtype import DType

    from solutions.solution_05 import GPT2TokenEmbeddings
    from solutions.solution_06 import GPT2PositionEmbeddings

    ids = np.random.default_rng(6).integers(0, 97, size=(2, 9))
    with runtime.building(cpu):
        tok = GPT2TokenEmbeddings(small_config())
        pos = GPT2PositionEmbeddings(small_config())
    (t,) = compile_and_run(
        tok,
        {"wte.weight": hf_model.wte.weight.detach().numpy()},
        [ids],
        ["batch", "seq"],
        cpu,
        dtype=DType.int64,
    )
    (p,) = compile_and_run(
        pos,
        {"wpe.weight": hf_model.wpe.weight.detach().numpy()},
        [np.arange(9)],
        ["seq"],
        cpu,
        dtype=DType.int64,
    )
    captured = {}

    def keep_input(module, args):
        captured["x"] = args[0].detach().numpy()  # returns None: the input is left unchanged

    handle = hf_model.h[0].register_forward_pre_hook(keep_input)
    try:
        with torch.no_grad():
            hf_model(torch.from_numpy(ids))
    finally:
        handle.remove()
    np.testing.assert_allclose(t + p, captured["x"], atol=1e-6, rtol=1e-6)
