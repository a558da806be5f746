"""Every entry of the book's "Troubleshooting MAX" page, reproduced against the pinned MAX.

Each test provokes the error or symptom the page describes and asserts what the page says
about it: the message MAX prints (the quoted fragment must appear both in MAX's message and
on the page), what the checker's ``explain`` table calls it, and that the fix works.

The errors MAX raises while tracing a graph cost no kernel compile and run by default. The
symptoms that need kernels compiled (a compiled mask, eager operations, random
initialization, a fresh kernel cache) are marked ``slow``: minutes each on a small machine.
Run them with ``pytest -m slow tests/test_troubleshooting.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from max.dtype import DType
from max.experimental import functional as F
from max.experimental.nn import Module

from checks.explain import explain
from gpt2 import course, runtime
from solutions.solution_02 import causal_mask

ROOT = course.ROOT
PAGE = ROOT / "book" / "src" / "troubleshooting.md"


def _page() -> str:
    return PAGE.read_text()


def _message(exc: BaseException) -> str:
    """What the checker passes to ``explain``: the type and the message."""
    return f"{type(exc).__name__}: {exc}"


def _on_page(fragment: str) -> None:
    assert fragment in _page(), f"the troubleshooting page does not quote {fragment!r}"


@pytest.fixture(scope="module")
def cpu():
    return runtime.pick_device("cpu")


def _lazy(target, factory, dtype=None):
    """Build a module lazily on ``target``, in ``dtype`` (default: the target's)."""
    from max.experimental import functional as F
    from max.experimental.tensor import default_device, default_dtype

    with default_device(target.device), default_dtype(dtype or target.dtype), F.lazy():
        return factory()


def _type(target, dtype, dims):
    return runtime.tensor_type(target, dtype, dims)


# --------------------------------------------------------------------------- while tracing


def test_float_ids_to_an_embedding(cpu):
    from max.dtype import DType
    from max.experimental.nn import Embedding

    embedding = _lazy(cpu, lambda: Embedding(10, dim=4))
    with pytest.raises(ValueError) as info:
        embedding.trace(_type(cpu, DType.float32, ["seq"]))
    fragment = "op operand #1 must be tensor with integer or index elements"
    assert fragment in str(info.value) and "MoGatherOp" in str(info.value)
    _on_page(fragment)
    assert "integer ids" in explain(_message(info.value))
    # The fix: integer ids trace fine.
    embedding.trace(_type(cpu, DType.int64, ["seq"]))


def test_matmul_shapes_that_do_not_match(cpu):
    from max.dtype import DType
    from max.experimental.nn import Linear

    linear = _lazy(cpu, lambda: Linear(4, 8))
    with pytest.raises(ValueError) as info:
        linear.trace(_type(cpu, DType.float32, ["seq", 8]))
    fragment = (
        "Matrix multiplication input lhs (shape [seq, 8]) dimension at axis -1 (value 8) "
        "must match input rhs (shape [4, 8]) dimension at axis -2 (value 4)"
    )
    assert fragment in str(info.value)
    _on_page(fragment)
    assert "shapes of two tensors do not fit" in explain(_message(info.value))
    assert list(linear.weight.shape) == [8, 4]  # the page: a Linear stores [out, in]
    linear.trace(_type(cpu, DType.float32, ["seq", 4]))


def test_int_of_a_symbolic_size(cpu):
    from max.dtype import DType
    from max.experimental.nn import Module

    class Converts(Module):
        def forward(self, x):
            return x * int(x.shape[1])

    class PassesOn(Module):
        def forward(self, x):
            batch, seq, width = x.shape
            return x.reshape([batch, seq, 2, int(width) // 2])  # static: converts fine

    with pytest.raises(TypeError) as info:
        _lazy(cpu, Converts).trace(_type(cpu, DType.float32, ["batch", "seq", 4]))
    fragment = "int(Dim('seq')): Int conversions only supported for static dims"
    assert fragment in str(info.value)
    _on_page(fragment)
    assert "symbolic" in explain(_message(info.value))
    _lazy(cpu, PassesOn).trace(_type(cpu, DType.float32, ["batch", "seq", 4]))


# --------------------------------------------------------------------------- loading weights


def _linear_weights(out_dim=8, in_dim=4, dtype=np.float32):
    return {"weight": np.ones((out_dim, in_dim), dtype), "bias": np.zeros(out_dim, dtype)}


def test_a_missing_weight(cpu):
    from max.dtype import DType
    from max.experimental.nn import Linear

    linear = _lazy(cpu, lambda: Linear(4, 8))
    weights = _linear_weights()
    del weights["bias"]
    with pytest.raises(KeyError) as info:
        linear.compile(_type(cpu, DType.float32, ["seq", 4]), weights=weights)
    fragment = "Weight 'bias' is missing from the provided weights mapping."
    assert fragment in str(info.value)
    _on_page(fragment)
    assert "different name" in explain(_message(info.value))


def test_a_transposed_weight(cpu):
    from max.dtype import DType
    from max.experimental.nn import Linear

    linear = _lazy(cpu, lambda: Linear(4, 8))
    weights = _linear_weights()
    weights["weight"] = weights["weight"].T.copy()  # Conv1D's [in, out]
    with pytest.raises(ValueError) as info:
        linear.compile(_type(cpu, DType.float32, ["seq", 4]), weights=weights)
    fragment = (
        "'weight': Loaded tensor (shape=[Dim(4), Dim(8)], dtype=DType.float32) not assignable "
        "to parameter (shape=[8, 4], dtype=DType.float32)."
    )
    assert fragment in str(info.value)
    _on_page(fragment)
    assert "transposed" in explain(_message(info.value))


def test_float32_weights_into_bfloat16_parameters(cpu):
    """What happens on a GPU, where bfloat16 is the default: reproduced with an explicit dtype."""
    from max.dtype import DType
    from max.experimental.nn import Linear

    built_like_on_a_gpu = _lazy(cpu, lambda: Linear(4, 8), dtype=DType.bfloat16)
    assert built_like_on_a_gpu.weight.dtype == DType.bfloat16
    with pytest.raises(ValueError) as info:
        built_like_on_a_gpu.load_state_dict(_linear_weights())
    fragment = (
        "'weight': Loaded tensor (shape=[Dim(8), Dim(4)], dtype=DType.float32) not assignable "
        "to parameter (shape=[8, 4], dtype=DType.bfloat16)."
    )
    assert fragment in str(info.value)
    _on_page(fragment)
    assert "different dtypes" in explain(_message(info.value))
    # The fix the page gives first: choose float32 when building.
    built_in_float32 = _lazy(cpu, lambda: Linear(4, 8), dtype=DType.float32)
    built_in_float32.load_state_dict(_linear_weights())


def test_the_default_dtype_is_float32_on_cpu_and_bfloat16_on_a_gpu():
    from max.driver import CPU, Accelerator, accelerator_count
    from max.dtype import DType
    from max.experimental.tensor import defaults

    assert defaults(device=CPU())[0] == DType.float32
    if accelerator_count() == 0:
        pytest.skip("no GPU here: the bfloat16 half of the claim needs one")
    assert defaults(device=Accelerator())[0] == DType.bfloat16


# --------------------------------------------------------------------------- MAX's cache

COMPILE_LAYER_NORM = """
import sys
import numpy as np
from gpt2 import runtime
from solutions.solution_03 import LayerNorm

class Shifted(LayerNorm):
    def forward(self, x):
        return super().forward(x) + 1.0

t = runtime.pick_device("cpu")
with runtime.building(t):
    module = (Shifted if sys.argv[1] == "shifted" else LayerNorm)(48, eps=1e-3)
weights = {"weight": np.ones(48, np.float32), "bias": np.zeros(48, np.float32)}
runtime.compile_module(module, [runtime.tensor_type(t, t.dtype, ["seq", 48])], weights, t)
"""


@pytest.mark.slow  # two new graphs: a minute or more each on a fresh machine
def test_max_keeps_a_compiled_graph_for_the_next_process(tmp_path):
    """The page: MAX keeps every graph it compiles in its own cache, keyed by the graph; the
    same graph compiled in a new process loads from there, another graph is compiled anew."""
    cache = Path(os.environ.get("MODULAR_CACHE_DIR", Path.home() / ".cache" / "modular"))
    models = cache / ".max_cache" / "mof"

    def compile_in_a_new_process(which: str) -> set[Path]:
        subprocess.run(
            [sys.executable, "-c", COMPILE_LAYER_NORM, which], cwd=ROOT, check=True, timeout=1800
        )
        return {p for p in models.rglob("*") if p.is_file()}

    first = compile_in_a_new_process("layer-norm")
    assert compile_in_a_new_process("layer-norm") == first  # the same graph: nothing new
    assert len(compile_in_a_new_process("shifted") - first) >= 1  # another graph: compiled
    _on_page("MODULAR_CACHE_DIR")


# --------------------------------------------------------------------------- slow: kernels


# The book shows this class (book/src/troubleshooting.md includes it by its anchor).
# ANCHOR: where_mask
class WhereMask(Module):
    """The mask the page warns about: comparisons of index tensors, then F.where."""

    def forward(self, scores):
        n = scores.shape[-1]
        rows = F.unsqueeze(F.arange(0, n, 1, out_dim=n, dtype=DType.int64, device=scores.device), 1)
        cols = F.unsqueeze(F.arange(0, n, 1, out_dim=n, dtype=DType.int64, device=scores.device), 0)
        mask = F.where(F.greater(cols, rows), float("-inf"), F.zeros_like(scores))
        return F.softmax(scores + mask, axis=-1)


# ANCHOR_END: where_mask


class BandMask(Module):
    """The fix: step 02's mask, made with F.band_part."""

    def forward(self, scores):
        n = scores.shape[-1]
        mask = causal_mask(n, dtype=scores.dtype, device=scores.device)
        return F.softmax(scores + mask, axis=-1)


def _softmax(scores, masked: bool):
    if masked:
        n = scores.shape[-1]
        scores = scores + np.triu(np.full((n, n), -np.inf, np.float32), 1)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _scores(shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


@pytest.mark.slow
@pytest.mark.slow  # compiles its own graphs: minutes on a fresh machine
def test_a_where_mask_is_lost_when_compiled_for_4d_scores(cpu):
    dims = ["batch", 2, "seq", "seq"]
    scores = _scores((1, 2, 5, 5))

    def compiled(cls, dims, x):
        module = _lazy(cpu, cls)
        run = module.compile(_type(cpu, cpu.dtype, dims))
        return runtime.to_numpy(run(runtime.to_tensor(x, cpu)))

    where = compiled(WhereMask, dims, scores)
    # The symptom: the future is visible, exactly as if there were no mask at all.
    assert not np.allclose(where, _softmax(scores, masked=True), atol=1e-5)
    assert np.allclose(where, _softmax(scores, masked=False), atol=1e-5)
    # The fix: a band_part mask compiles right.
    assert np.allclose(compiled(BandMask, dims, scores), _softmax(scores, masked=True), atol=1e-5)
    # And the page's remark: on 2-D scores the same where-mask compiles right.
    flat = _scores((5, 5))
    assert np.allclose(
        compiled(WhereMask, ["seq", "seq"], flat), _softmax(flat, masked=True), atol=1e-5
    )
    _on_page("four-dimensional scores")


@pytest.mark.slow
@pytest.mark.slow  # compiles its own graphs: minutes on a fresh machine
def test_a_where_mask_is_right_eagerly(cpu):
    """The other half of the symptom (very slow: every eager op compiles its own kernel)."""
    from max.experimental.tensor import default_device, default_dtype

    scores = _scores((1, 2, 5, 5))
    with default_device(cpu.device), default_dtype(cpu.dtype):
        out = runtime.to_numpy(WhereMask()(runtime.to_tensor(scores, cpu)))
    assert np.allclose(out, _softmax(scores, masked=True), atol=1e-5)


@pytest.mark.slow
def test_compiling_without_weights_initializes_randomly_and_silently(cpu, recwarn):
    from max.dtype import DType
    from max.experimental.nn import Linear

    linear = _lazy(cpu, lambda: Linear(4, 8))
    assert not linear.weight.real  # lazily built: a promise, no numbers yet
    run = linear.compile(_type(cpu, DType.float32, ["seq", 4]))  # no weights= given
    assert not [w for w in recwarn if "weight" in str(w.message).lower()]  # silently
    assert linear.weight.real  # the promise was kept: random numbers were drawn
    weight, bias = (runtime.to_numpy(t) for t in (linear.weight, linear.bias))
    assert weight.std() > 0.1  # random normal, not zeros or ones
    x = np.ones((2, 4), np.float32)
    out = runtime.to_numpy(run(runtime.to_tensor(x, cpu)))
    assert np.allclose(out, x @ weight.T + bias, atol=1e-5)  # and they are what it computes with
    _on_page("randomly initialized, eagerly")


EAGER_REPRS = textwrap.dedent(
    """
    import signal, sys
    import numpy as np
    from max.driver import CPU
    from max.dtype import DType
    from max.experimental.tensor import Tensor, default_device, default_dtype

    if sys.argv[1] == "plain":
        def stop(signum, frame):
            raise KeyboardInterrupt
        signal.signal(signal.SIGINT, stop)
    calls = []
    original = Tensor.__repr__
    def counting(self):
        calls.append(1)
        return original(self)
    Tensor.__repr__ = counting
    with default_device(CPU()), default_dtype(DType.float32):
        x = Tensor.from_dlpack(np.ones((64, 64), np.float32))
        (x + x).to_numpy()
    print(len(calls))
    """
)


def _eager_reprs(handler: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", EAGER_REPRS, handler],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_eager_operations_format_their_results_under_the_default_sigint_handler():
    with_default = _eager_reprs("default")
    with_plain = _eager_reprs("plain")
    assert with_plain == 0
    if sys.version_info < (3, 13):
        assert with_default > 0  # the slowness: every eager result is formatted as text
    else:
        assert with_default == 0  # "Python 3.13 does not do this"
    _on_page("signal.signal(signal.SIGINT, stop)")


@pytest.mark.slow
@pytest.mark.slow  # compiles its own graphs: minutes on a fresh machine
def test_modular_cache_dir_moves_the_kernel_cache(tmp_path):
    """A fresh MODULAR_CACHE_DIR starts empty and fills as kernels compile (slow: all of
    them compile again)."""
    script = textwrap.dedent(
        """
        import numpy as np
        from gpt2 import runtime
        runtime.quiet_max()
        from max.experimental import functional as F
        from max.experimental.nn import Linear
        t = runtime.pick_device("cpu")
        with runtime.building(t):
            linear = Linear(4, 8)
        run = linear.compile(runtime.tensor_type(t, t.dtype, ["seq", 4]),
                             weights={"weight": np.ones((8, 4), np.float32),
                                      "bias": np.zeros(8, np.float32)})
        print(runtime.to_numpy(run(runtime.to_tensor(np.ones((2, 4), np.float32), t)))[0, 0])
        """
    )
    cache = tmp_path / "modular-cache"
    env = {
        **os.environ,
        "MODULAR_CACHE_DIR": str(cache),
        "GPT2_CHECKS_CACHE": str(tmp_path / "checks"),
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.split()[-1]) == 4.0
    assert cache.is_dir() and any(p.is_file() for p in cache.rglob("*")), "nothing was cached there"
    _on_page("MODULAR_CACHE_DIR")
