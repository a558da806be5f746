"""Reading a GPT-2 checkpoint: the plumbing around step 11's ``convert_hf_weights``.

Where the files are (a local directory, or the HuggingFace hub), which fields of
``config.json`` shape the model, how ``model.safetensors`` is read, and how a state dict is
checked against a model and loaded into it. Step 11's chapter explains the conversion; this
is what lies around it, written once for the course.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

HUB_FILES = ("config.json", "model.safetensors")
CONFIG_FIELDS = (
    "vocab_size",
    "n_positions",
    "n_embd",
    "n_layer",
    "n_head",
    "n_inner",
    "layer_norm_epsilon",
)


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: says which tensor, and why."""


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


def config_fields(hf_config: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of HuggingFace's config.json that shape the model (for ``GPT2Config``)."""
    if hf_config.get("model_type", "gpt2") != "gpt2":
        raise CheckpointError(
            f"config.json describes a {hf_config['model_type']!r} model, not gpt2."
        )
    return {f: hf_config[f] for f in CONFIG_FIELDS if f in hf_config}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def build(cls: type, config, device=None):
    """``cls(config)``, built lazily (no random initialisation to pay for), on ``device``
    (default: the CPU), in float32."""
    from max.driver import CPU
    from max.dtype import DType
    from max.experimental import functional as F
    from max.experimental.tensor import default_device, default_dtype

    with default_device(device or CPU()), default_dtype(DType.float32), F.lazy():
        return cls(config)


def check_state(state: Mapping[str, np.ndarray], model) -> None:
    """Every parameter present, nothing extra, every shape right; or one clear error."""
    expected = {name: tuple(int(d) for d in t.shape) for name, t in model.parameters}
    problems = [
        f"missing tensor {n} (shape {list(s)})" for n, s in expected.items() if n not in state
    ]
    problems += [f"unexpected tensor {n}" for n in state if n not in expected]
    problems += [
        f"tensor {n} has shape {list(state[n].shape)}, the model expects {list(s)}"
        for n, s in expected.items()
        if n in state and tuple(state[n].shape) != s
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise CheckpointError(f"The checkpoint does not fit the model: {shown}.")


def load_state(model, state: Mapping[str, np.ndarray], device=None):
    """``model`` holding ``state`` (the model's own names), checked tensor by tensor first;
    the head tied to ``wte`` again; on ``device`` (recorded for the input types of compile)."""
    check_state(state, model)
    model.load_state_dict(state)
    # Loading gives each name its own tensor; tie the head to wte again, so the compiled
    # graph holds the [vocab_size, n_embd] matrix once (as HuggingFace ties it on loading).
    model.lm_head.weight = model.transformer.wte.weight
    if device is not None:
        model.to(device)
    return model
