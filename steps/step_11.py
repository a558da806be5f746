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

from gpt2.checkpoint import (  # reading files, checking and loading a state: the plumbing
    CheckpointError,  # noqa: F401 - what load_pretrained raises, for its callers
    build,
    checkpoint_dir,
    config_fields,
    load_state,
    read_safetensors,
)
from solutions.solution_01 import GPT2Config
from solutions.solution_10 import GPT2LMHeadModel

PREFIX = "transformer."
# GPT-2's Conv1D layers: their weights are stored [in, out] and must be transposed.
CONV1D_WEIGHTS = (
    ".attn.c_attn.weight",
    ".attn.c_proj.weight",
    ".mlp.c_fc.weight",
    ".mlp.c_proj.weight",
)
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
    # TODO: HuggingFace's tensors → this model's state dict of float32 arrays (see the
    # docstring; the constants above name what differs). About 12 lines.
    raise NotImplementedError("convert_hf_weights")
    # ---- your code ends here ----


# ANCHOR_END: convert


# ANCHOR: load_pretrained
def load_pretrained(name_or_path: str | Path, *, device=None) -> tuple[GPT2Config, GPT2LMHeadModel]:
    """Read ``config.json`` and ``model.safetensors`` from a directory or the HuggingFace hub.

    ``name_or_path`` is a local directory, or a hub id such as ``openai-community/gpt2``
    (downloaded once, then read from HuggingFace's cache). Returns the config and the
    model, with every parameter loaded, in float32, on ``device`` (default: the CPU).
    Raises ``CheckpointError`` naming the tensor when the checkpoint does not fit.
    """
    directory = checkpoint_dir(name_or_path)
    config = GPT2Config(**config_fields(json.loads((directory / "config.json").read_text())))
    state = convert_hf_weights(read_safetensors(directory / "model.safetensors"))
    model = load_state(build(GPT2LMHeadModel, config, device), state, device)
    return config, model


# ANCHOR_END: load_pretrained
