"""Step 11 · Loading pretrained weights.

Our model has the right shape; now it needs GPT-2's trained numbers. HuggingFace publishes
them as ``model.safetensors``: named arrays in a file that holds data only, never code
(unlike PyTorch's pickle files, which can run code when opened). Their names are almost
ours, with three differences that ``convert_hf_weights`` smooths over:

* the prefix: the hub's file says ``h.0.attn.c_attn.weight``, other copies say
  ``transformer.h.0.attn.c_attn.weight``; our model says the latter;
* the layout: GPT-2 was written with a ``Conv1D`` layer that stores its weight as
  ``[in, out]``, while a ``Linear`` stores ``[out, in]``, so those weights are transposed;
* the extras: old files carry each block's causal mask as a buffer (``attn.bias``, and
  ``attn.masked_bias``), which we build ourselves (step 02); and the tied ``lm_head.weight``
  is usually left out, because it is ``wte`` again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from solutions.solution_01 import GPT2Config
from solutions.solution_10 import GPT2LMHeadModel

PREFIX = "transformer."
# GPT-2's Conv1D layers: their weights are stored [in, out] and must be transposed.
CONV1D_WEIGHTS = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight")
# Buffers of old checkpoints: the causal mask and its fill value, not weights.
LEGACY_BUFFERS = (".attn.bias", ".attn.masked_bias")  # not attn.c_attn.bias: a weight


# ANCHOR: convert
def convert_hf_weights(hf_state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """HuggingFace GPT-2 tensors → this model's state dict (float32 NumPy arrays).

    Accepts keys with or without the ``transformer.`` prefix; skips the legacy mask
    buffers; transposes the Conv1D weights; fills the tied ``lm_head.weight`` from ``wte``
    when the checkpoint leaves it out.
    """
    # ---- your code starts here ----
    state: dict[str, np.ndarray] = {}
    for hf_name, value in hf_state.items():
        name = hf_name.removeprefix(PREFIX)
        if name.endswith(LEGACY_BUFFERS):
            continue
        array = np.asarray(value, dtype=np.float32)
        if name.endswith(CONV1D_WEIGHTS):
            array = array.T  # Conv1D's [in, out] → Linear's [out, in]
        # lm_head sits beside the transformer; everything else lives inside it.
        ours = name if name.startswith("lm_head.") else PREFIX + name
        state[ours] = np.ascontiguousarray(array)
    if "lm_head.weight" not in state and "transformer.wte.weight" in state:
        state["lm_head.weight"] = state["transformer.wte.weight"]  # tied: the same matrix
    return state
    # ---- your code ends here ----
# ANCHOR_END: convert


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: says which tensor, and why."""


HUB_FILES = ("config.json", "model.safetensors")


# ANCHOR: load_pretrained
def load_pretrained(name_or_path: str | Path, *, device=None) -> tuple[GPT2Config, GPT2LMHeadModel]:
    """Read ``config.json`` and ``model.safetensors`` from a directory or the HuggingFace hub.

    ``name_or_path`` is a local directory, or a hub id such as ``openai-community/gpt2``
    (downloaded once, then read from HuggingFace's cache). Returns the config and the
    model, with every parameter loaded, in float32, on ``device`` (default: the CPU).
    Raises ``CheckpointError`` naming the tensor when the checkpoint does not fit.
    """
    directory = checkpoint_dir(name_or_path)
    config = config_from_hf(json.loads((directory / "config.json").read_text()))
    state = convert_hf_weights(read_safetensors(directory / "model.safetensors"))
    model = model_from_state(config, state, device)
    return config, model
# ANCHOR_END: load_pretrained


def checkpoint_dir(name_or_path: str | Path) -> Path:
    """A local directory as it is; a hub id downloaded (or found in the cache) first."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        missing = [f for f in HUB_FILES if not (path / f).is_file()]
        if "model.safetensors" in missing and any(path.glob("*.bin")):
            raise CheckpointError(
                f"{path} has PyTorch pickle weights (*.bin) but no model.safetensors. "
                "Pickle files can run code when opened, so this course reads safetensors only."
            )
        if missing:
            raise CheckpointError(f"{path} has no {' or '.join(missing)}.")
        return path
    from huggingface_hub import hf_hub_download

    for filename in HUB_FILES:
        local = hf_hub_download(repo_id=str(name_or_path), filename=filename)
    return Path(local).parent


def config_from_hf(hf_config: Mapping[str, Any]) -> GPT2Config:
    """Keep the fields of HuggingFace's config.json that shape the model."""
    if hf_config.get("model_type", "gpt2") != "gpt2":
        raise CheckpointError(f"config.json describes a {hf_config['model_type']!r} model, not gpt2.")
    fields = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner", "layer_norm_epsilon")
    return GPT2Config(**{f: hf_config[f] for f in fields if f in hf_config})


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def model_from_state(config: GPT2Config, state: Mapping[str, np.ndarray], device=None) -> GPT2LMHeadModel:
    """A model holding ``state`` (this model's names), checked tensor by tensor first."""
    model = build_model(config, device)
    check_state(state, model)
    model.load_state_dict(state)
    # Loading gives each name its own tensor; tie the head to wte again, so the compiled
    # graph holds the [vocab_size, n_embd] matrix once (as HuggingFace ties it on loading).
    model.lm_head.weight = model.transformer.wte.weight
    if device is not None:
        model.to(device)  # records the device, for the input types of compile()
    return model


def build_model(config: GPT2Config, device=None, cls: type = GPT2LMHeadModel) -> GPT2LMHeadModel:
    """Build lazily (no random initialisation to pay for), on ``device``, in float32."""
    from max.driver import CPU
    from max.dtype import DType
    from max.experimental import functional as F
    from max.experimental.tensor import default_device, default_dtype

    with default_device(device or CPU()), default_dtype(DType.float32), F.lazy():
        return cls(config)


def check_state(state: Mapping[str, np.ndarray], model) -> None:
    """Every parameter present, nothing extra, every shape right; or one clear error."""
    expected = {name: tuple(int(d) for d in t.shape) for name, t in model.parameters}
    problems = [f"missing tensor {n} (shape {list(s)})" for n, s in expected.items() if n not in state]
    problems += [f"unexpected tensor {n}" for n in state if n not in expected]
    problems += [
        f"tensor {n} has shape {list(state[n].shape)}, the model expects {list(s)}"
        for n, s in expected.items()
        if n in state and tuple(state[n].shape) != s
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CheckpointError(f"The checkpoint does not fit the model: {shown}.")
