"""The learner's Mojo kernels as MAX ops: step 15's GELU, step 16's decode attention.

A kernel step's file (``steps/step_15.mojo``) is one Mojo source file that registers its op
with ``@register``. MAX loads custom ops from a Mojo package, so ``package`` copies the file
into a package of its own (an ``__init__.mojo``) and has ``mojo precompile`` build it, once
per content, into ``.cache/checks/kernels/``: an unchanged file is never compiled twice.
MAX compiles the op's kernel for this machine at its first run and keeps that in its own
cache (``~/.cache/modular``). ``max.experimental.custom.declare`` makes the op a function
of tensors, eager or inside a compiled graph.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from max.experimental.nn import Module

from gpt2 import course

GELU_OP = "gpt2_gelu"  # the name step 15's kernel registers
ATTENTION_OP = "gpt2_decode_attention"  # step 16's


class KernelCompileError(Exception):
    """Mojo could not compile a kernel file; ``message`` is the compiler's, about that file."""

    def __init__(self, source: Path, message: str) -> None:
        super().__init__(message)
        self.source = source
        self.message = message


def _compiler_errors(stderr: str, compiled: Path, source: Path) -> str:
    """The compiler's messages, naming the learner's file instead of the package copy."""
    lines = [
        line.replace(str(compiled), str(source))
        for line in stderr.splitlines()
        if not line.startswith("Imported from") and "failed to parse the provided" not in line
    ]
    return "\n".join(lines).strip()


def package(source: Path) -> Path:
    """``source`` built into a Mojo package MAX loads (a ``.mojoc``), once per content."""
    from mojo.run import subprocess_run_mojo

    text = source.read_bytes()
    stem = re.sub(r"\W", "_", source.stem)
    name = f"{stem}_{hashlib.sha256(text).hexdigest()[:16]}"
    built = course.cache_dir() / "kernels" / f"{name}.mojoc"
    if built.exists():
        return built
    built.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=built.parent) as tmp:
        init = Path(tmp) / name / "__init__.mojo"
        init.parent.mkdir()
        init.write_bytes(text)
        # The compiler takes the module's name from the output's; build under the final name.
        staged = Path(tmp) / built.name
        result = subprocess_run_mojo(
            ["precompile", str(init.parent), "-o", str(staged)], capture_output=True
        )
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace")
            raise KernelCompileError(source, _compiler_errors(stderr, init, source))
        staged.replace(built)
    return built


@functools.cache
def _rows_op(name: str, built: Path):
    """Op ``name`` of package ``built``: a float32 [rows, n] tensor in, one of its shape out."""
    from max.dtype import DType
    from max.experimental import custom

    rows, n = custom.Symbols("rows", "n")
    return custom.declare(
        name,
        inputs={"x": custom.TemplateType(DType.float32, [rows, n])},
        outputs=[custom.TemplateType(DType.float32, [rows, n])],
        custom_extensions=[built],
    )


def gelu(source: Path) -> Callable:
    """Step 15's GELU from ``source``: a float32 tensor of any shape in, its GELU out."""
    op = _rows_op(GELU_OP, package(source))

    def apply(x):
        rows = x.reshape([-1, x.shape[-1]])  # the kernel sees rows: every axis but the last
        return op(rows).reshape(x.shape)

    return apply


@functools.cache
def _attention_op(built: Path):
    from max.dtype import DType
    from max.experimental import custom

    heads, head_dim, capacity = custom.Symbols("n_head", "head_dim", "capacity")
    row, keys, values_t = (
        custom.TemplateType(DType.float32, dims)
        for dims in ([heads, head_dim], [heads, capacity, head_dim], [heads, head_dim, capacity])
    )
    op = custom.declare(
        ATTENTION_OP,
        inputs={
            "q": row,
            "k": row,
            "v": row,
            "keys": keys,
            "values_t": values_t,
            "length": custom.TemplateType(DType.int64, [1]),
        },
        outputs=[row, custom.TemplateType(DType.float32, [heads, capacity + 1])],
        custom_extensions=[built],
    )
    return lambda *inputs: op(*inputs)[0]  # the second output is the kernel's workspace


def decode_attention(source: Path) -> Callable:
    """Step 16's op from ``source``: one new token's q, k, v [n_head, head_dim], the cache's
    keys [n_head, capacity, head_dim] and values transposed [n_head, head_dim, capacity],
    and how many positions it holds ([1], int64) → the attention's output [n_head,
    head_dim]. ``gpt2.fast.compile_decoder(..., attention=)`` takes it."""
    return _attention_op(package(source))


def _sample_inputs(name: str) -> list:
    """Tiny inputs for op ``name``'s first run."""
    import numpy as np

    if name == GELU_OP:
        return [np.zeros((1, 1), np.float32)]
    one, cache = np.zeros((1, 1), np.float32), np.zeros((1, 1, 1), np.float32)
    return [one, one, one, cache, cache, np.zeros(1, np.int64)]


def op(name: str, source: Path) -> Callable:
    """Public name ``name`` of a kernel step, from ``source``, run once on a small input on
    the CPU: the first run is when MAX compiles the kernel."""
    from max.experimental.tensor import Tensor

    function = {GELU_OP: gelu, ATTENTION_OP: decode_attention}[name](source)
    function(*(Tensor.from_dlpack(x) for x in _sample_inputs(name)))
    return function


# ANCHOR: mlp_with_kernel
class MLPWithKernel(Module):
    """A step-04 MLP, the same two layers (same names, same weights), its GELU from Mojo."""

    def __init__(self, mlp, gelu: Callable) -> None:
        self.c_fc, self.c_proj = mlp.c_fc, mlp.c_proj
        self.gelu = gelu

    def forward(self, hidden_states):
        return self.c_proj(self.gelu(self.c_fc(hidden_states)))


def with_gelu_kernel(model, source: Path):
    """``model`` (steps 08-10) with each block's MLP using ``source``'s GELU kernel."""
    kernel = gelu(source)
    transformer = getattr(model, "transformer", model)
    for block in transformer.h:
        block.mlp = MLPWithKernel(block.mlp, kernel)
    return model


# ANCHOR_END: mlp_with_kernel
