"""Step 11: HuggingFace checkpoints convert and load exactly, or fail naming the tensor.

The reference for every value is HuggingFace itself: transformers reads the fixture
checkpoints (``scripts/make_fixtures.py``), and its modules say which weights are Conv1D.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from hub_cache import fill_hub_cache, offline_env

from gpt2 import course, runtime
from solutions.solution_11 import CheckpointError, convert_hf_weights, load_pretrained

ROOT = course.ROOT
FIXTURES = ROOT / "checks" / "data"
HUB = FIXTURES / "tiny-gpt2"
PREFIXED = FIXTURES / "tiny-gpt2-prefixed"


def _file(directory) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(directory / "model.safetensors"))


@pytest.fixture(scope="module")
def hf_model():
    pytest.importorskip("torch")
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(str(HUB)).eval()


@pytest.fixture(scope="module")
def expected(hf_model):
    """Our model's state dict, derived from HuggingFace's modules: Conv1D weights are the
    ones HF stores [in, out]."""
    from transformers.pytorch_utils import Conv1D

    conv1d = {name for name, module in hf_model.named_modules() if isinstance(module, Conv1D)}
    state = {}
    for name, tensor in hf_model.state_dict().items():
        array = tensor.detach().numpy()
        if name.rsplit(".", 1)[0] in conv1d and name.endswith(".weight"):
            array = array.T
        state[name] = array
    return state


def _same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == np.float32, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_hub_layout_converts_to_hf_model_weights(expected):
    state = _file(HUB)
    assert "h.0.attn.bias" in state and "lm_head.weight" not in state  # the hub's layout
    _same(convert_hf_weights(state), expected)


def test_prefixed_layout_converts_to_the_same(expected):
    state = _file(PREFIXED)
    assert "transformer.h.0.attn.masked_bias" in state and "lm_head.weight" in state
    _same(convert_hf_weights(state), expected)


def test_torch_state_dict_converts_too(hf_model, expected):
    _same(convert_hf_weights(hf_model.state_dict()), expected)


def test_tied_head_is_filled_from_wte_only_when_absent():
    state = _file(HUB)
    converted = convert_hf_weights(state)
    np.testing.assert_array_equal(converted["lm_head.weight"], state["wte.weight"])
    own_head = dict(state, **{"lm_head.weight": state["wte.weight"] * 2})
    np.testing.assert_array_equal(
        convert_hf_weights(own_head)["lm_head.weight"], state["wte.weight"] * 2
    )


def test_convert_does_not_change_its_input():
    state = _file(PREFIXED)
    before = {k: v.copy() for k, v in state.items()}
    convert_hf_weights(state)
    _same(state, before)


def test_load_pretrained_loads_every_parameter(expected):
    config, model = load_pretrained(HUB)
    hf_config = json.loads((HUB / "config.json").read_text())
    assert (
        config.n_embd,
        config.n_layer,
        config.n_head,
        config.vocab_size,
        config.n_positions,
    ) == (
        hf_config["n_embd"],
        hf_config["n_layer"],
        hf_config["n_head"],
        hf_config["vocab_size"],
        hf_config["n_positions"],
    )
    loaded = {name: runtime.to_numpy(t) for name, t in model.parameters}
    _same(loaded, expected)
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied after loading


def _broken_checkpoint(tmp_path, change) -> str:
    from safetensors.numpy import save_file

    directory = tmp_path / "broken"
    directory.mkdir()
    shutil.copy(HUB / "config.json", directory / "config.json")
    state = _file(HUB)
    change(state)
    save_file(state, str(directory / "model.safetensors"))
    return str(directory)


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda s: s.pop("h.1.mlp.c_fc.weight"), ["missing", "transformer.h.1.mlp.c_fc.weight"]),
        (
            lambda s: s.update({"h.0.attn.extra": np.zeros(3, np.float32)}),
            ["unexpected", "transformer.h.0.attn.extra"],
        ),
        (
            lambda s: s.update({"ln_f.bias": np.zeros(5, np.float32)}),
            ["transformer.ln_f.bias", "shape [5]"],
        ),
        (
            lambda s: s.update({"h.0.attn.c_attn.weight": s["h.0.attn.c_attn.weight"].T.copy()}),
            ["transformer.h.0.attn.c_attn.weight", "shape"],
        ),
    ],
    ids=["missing", "extra", "mis-shaped", "transposed"],
)
def test_a_checkpoint_that_does_not_fit_names_the_tensor(tmp_path, change, words):
    path = _broken_checkpoint(tmp_path, change)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(path)
    for word in words:
        assert word in str(info.value)


def test_pickle_checkpoints_are_refused(tmp_path):
    shutil.copy(HUB / "config.json", tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_pretrained(tmp_path)


def test_a_hub_id_loads_from_the_hub_cache(expected, tmp_path):
    """``load_pretrained("openai-community/gpt2")`` takes the hub path (hf_hub_download),
    here answered by a cache holding the tiny fixture, offline, in a fresh process."""
    import subprocess
    import sys

    cache = fill_hub_cache(
        tmp_path / "hub", "openai-community/gpt2", HUB, ("config.json", "model.safetensors")
    )
    out = tmp_path / "loaded.npz"
    code = (
        "import sys, numpy as np\n"
        "from gpt2 import runtime\n"
        "from solutions.solution_11 import load_pretrained\n"
        "config, model = load_pretrained('openai-community/gpt2')\n"
        "np.savez(sys.argv[1], **{n: runtime.to_numpy(t) for n, t in model.parameters})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=ROOT,
        env={**os.environ, **offline_env(cache)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    _same(dict(np.load(out)), expected)


def test_a_directory_without_config_says_so(tmp_path):
    shutil.copy(HUB / "model.safetensors", tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="config.json"):
        load_pretrained(tmp_path)
