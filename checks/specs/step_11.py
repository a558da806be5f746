"""Step 11 · Loading pretrained weights: convert both checkpoint layouts, then load one.

The checkpoints are the tiny GPT-2 in ``checks/data`` (written by
``scripts/make_fixtures.py`` with HuggingFace): one in the hub's layout, one with
``transformer.`` prefixes, an explicit ``lm_head.weight`` and legacy buffers.
"""

from __future__ import annotations

import numpy as np

from checks.spec import Mistake, Spec
from gpt2.course import DATA as FIXTURES
from gpt2.runtime import to_numpy

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
CASES = (
    ("convert", "tiny-gpt2", "hub layout: no prefix, lm_head left out, attn.bias buffers"),
    ("convert", "tiny-gpt2-prefixed", "transformer. prefix, lm_head.weight, masked_bias"),
    ("load", "tiny-gpt2", "load_pretrained"),
)


def _read(directory: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(FIXTURES / directory / "model.safetensors"))


def run(ns, case, ctx):
    kind, directory, _ = case
    if kind == "convert":
        return ns.convert_hf_weights(_read(directory))
    try:
        _config, model = ns.load_pretrained(FIXTURES / directory, device=ctx.target.device)
    except ValueError as exc:  # CheckpointError: the converted tensors do not fit
        return exc
    return {name: to_numpy(tensor) for name, tensor in model.parameters}


def compare(actual, expected, tol=None):
    if isinstance(actual, Exception):
        return False, f"{type(actual).__name__}: {actual}"
    if not isinstance(actual, dict):
        return False, f"returned a {type(actual).__name__}, expected a dict of arrays"
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}" + (" …" if len(missing) > 3 else ""))
        if extra:
            parts.append(f"unexpected {', '.join(extra[:3])}" + (" …" if len(extra) > 3 else ""))
        return False, "; ".join(parts)
    for name in sorted(expected):
        mine, ref = np.asarray(actual[name]), expected[name]
        if mine.shape != ref.shape:
            return False, f"{name}: shape {list(mine.shape)}, expected {list(ref.shape)}"
        if mine.dtype != ref.dtype:
            return False, f"{name}: dtype {mine.dtype}, expected {ref.dtype}"
        if not np.array_equal(mine, ref):
            return False, f"{name}: values differ from the checkpoint's"
    return True, f"{len(expected)} tensors, names, shapes and values all equal"


# ---------------------------------------------------------------- known mistakes
# The expected dict is the same for both layouts, so each detector compares the learner's
# dict with a wrong version of it. A failed load_pretrained counts when its error names
# the tensor this mistake would break.


def _normal(name: str) -> str:
    bare = name
    while bare.startswith("transformer."):
        bare = bare[len("transformer.") :]
    return bare if bare.startswith("lm_head.") else "transformer." + bare


def _said(actual, *words) -> bool:
    return isinstance(actual, Exception) and all(w in str(actual) for w in words)


def kept_buffers(actual, expected):
    if isinstance(actual, Exception):
        return _said(actual, "unexpected tensor", "attn.")
    return isinstance(actual, dict) and any(
        k.endswith(("attn.bias", "attn.masked_bias")) and "c_attn" not in k for k in actual
    )


def prefix(actual, expected):
    if isinstance(actual, Exception):
        return _said(actual, "missing tensor transformer.")
    if not isinstance(actual, dict) or all(_normal(k) == k for k in actual):
        return False
    names = {_normal(k) for k in actual}
    # Without the prefix, a check for transformer.wte.weight may also skip the tied head.
    return names in (set(expected), set(expected) - {"lm_head.weight"})


def head_missing(actual, expected):
    if isinstance(actual, Exception):
        return _said(actual, "missing tensor lm_head.weight")
    return isinstance(actual, dict) and set(actual) == set(expected) - {"lm_head.weight"}


def not_transposed(actual, expected):
    if isinstance(actual, Exception):
        return _said(actual, "c_attn.weight has shape")
    if not isinstance(actual, dict) or set(actual) != set(expected):
        return False
    conv = [k for k in expected if k.endswith(CONV1D)]
    return all(np.array_equal(np.asarray(actual[k]), expected[k].T) for k in conv)


def transposed_all(actual, expected):
    if isinstance(actual, Exception):
        return _said(actual, "wte.weight has shape")
    if not isinstance(actual, dict) or set(actual) != set(expected):
        return False
    return (
        np.asarray(actual["transformer.wte.weight"]).shape
        == expected["transformer.wte.weight"].T.shape
    )


SPEC = Spec(
    cases=CASES,
    run=run,
    compare=compare,
    describe=lambda case: (
        f"load_pretrained(checks/data/{case[1]})"
        if case[0] == "load"
        else f"convert_hf_weights({case[2]})"
    ),
    mistakes=(
        Mistake(
            "kept-buffers",
            "Skip the legacy buffers h.N.attn.bias and h.N.attn.masked_bias: they hold the "
            "causal mask, which step 02 builds, not weights. (Careful: attn.c_attn.bias IS a "
            "weight; test the end of the name, '.attn.bias'.)",
            detect=kept_buffers,
            change={"        if name.endswith(LEGACY_BUFFERS):\n            continue\n": ""},
        ),
        Mistake(
            "prefix",
            "Every name of our model starts with 'transformer.' except 'lm_head.weight'. "
            "Some checkpoints have the prefix and some do not: remove it when present "
            "(str.removeprefix), then add it back to everything but lm_head.",
            detect=prefix,
            change={"name = hf_name.removeprefix(PREFIX)": "name = hf_name"},
        ),
        Mistake(
            "tied-head-missing",
            "The hub's file leaves out lm_head.weight, because it is tied to wte. When it is "
            "absent, fill it with the wte matrix: state['lm_head.weight'] = "
            "state['transformer.wte.weight'].",
            detect=head_missing,
            change={'state["lm_head.weight"] = state["transformer.wte.weight"]': "pass"},
        ),
        Mistake(
            "not-transposed",
            "GPT-2's c_attn, c_proj and c_fc weights are stored as [in, out] (a Conv1D layer); "
            "our Linear wants [out, in]. Transpose those weights (array.T), and only those.",
            detect=not_transposed,
            change={"array = array.T  # Conv1D": "pass  # Conv1D"},
        ),
        Mistake(
            "transposed-all",
            "Only the Conv1D weights (c_attn, c_proj, c_fc) need transposing; wte and wpe "
            "are already [rows, n_embd].",
            detect=transposed_all,
            change={"if name.endswith(CONV1D_WEIGHTS):": "if array.ndim == 2:"},
        ),
    ),
    hint="Print a few names and shapes of the checkpoint next to dict(model.parameters): "
    "the two lists should line up once the prefix, the Conv1D weights and lm_head are handled.",
)
