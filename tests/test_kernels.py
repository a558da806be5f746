"""The learner's Mojo kernels as MAX ops (gpt2/kernels.py): built once per content, compile
errors told about the learner's own file and line, and the GELU kernel inside a whole GPT-2
giving the logits MAX's own GELU gives."""

from __future__ import annotations

import numpy as np
import pytest

from gpt2 import course, kernels

SOLUTION = course.solution_file(course.defining(kernels.GELU_OP).number)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(course.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "kernels"


def test_a_file_is_built_once_per_content(tmp_path, cache):
    source = tmp_path / "step_15.mojo"
    source.write_text(SOLUTION.read_text())
    built = kernels.package(source)
    assert built.parent == cache and built.suffix == ".mojoc"
    stamp = built.stat().st_mtime_ns
    assert kernels.package(source) == built and built.stat().st_mtime_ns == stamp
    source.write_text(SOLUTION.read_text() + "\n# an edit\n")
    assert kernels.package(source) != built


def test_a_compile_error_names_the_learners_file_and_line(tmp_path, cache):
    source = tmp_path / "step_15.mojo"
    text = SOLUTION.read_text().replace("return 0.5 * x * (1", "return 0.5 * y * (1")
    source.write_text(text)
    line = text[: text.index("0.5 * y")].count("\n") + 1
    with pytest.raises(kernels.KernelCompileError) as caught:
        kernels.package(source)
    assert f"{source}:{line}:" in caught.value.message
    assert "use of unknown declaration 'y'" in caught.value.message
    assert "__init__.mojo" not in caught.value.message  # the package copy is not named
    assert not list(cache.glob("*.mojoc"))


def test_gpt2_with_the_gelu_kernel_gives_maxs_logits(cpu):
    from gpt2 import runtime
    from solutions.solution_11 import load_pretrained

    ids = runtime.to_tensor(np.array([[5, 17, 200, 41, 9]], dtype=np.int64), cpu)
    plain = load_pretrained(course.TINY_GPT2, device=cpu.device)[1]
    mine = kernels.with_gelu_kernel(
        load_pretrained(course.TINY_GPT2, device=cpu.device)[1], SOLUTION
    )
    assert all(type(block.mlp) is kernels.MLPWithKernel for block in mine.transformer.h)
    assert set(dict(mine.parameters)) == set(dict(plain.parameters))  # HuggingFace's names
    expected = runtime.to_numpy(plain(ids))
    np.testing.assert_allclose(runtime.to_numpy(mine(ids)), expected, atol=2e-5, rtol=2e-5)


ATTENTION = course.solution_file(course.defining(kernels.ATTENTION_OP).number)


@pytest.mark.parametrize("draft", [0, 3], ids=["one-token-graph", "drafter"])
def test_fast_decode_with_the_attention_kernel_chooses_step_13s_ids(cpu, draft):
    """gpt2.fast with step 16's kernel in its one-token graphs (the float32 one, or the Q6_K
    drafter's) chooses the ids step 13's cache chooses."""
    from gpt2 import fast
    from solutions.solution_11 import load_pretrained
    from solutions.solution_13 import generate_cached

    model = load_pretrained(course.TINY_GPT2, device=cpu.device)[1]
    prompt = [5, 17, 200, 41, 9]
    attention = kernels.decode_attention(ATTENTION)
    assert kernels.decode_attention(ATTENTION) is attention  # one op, one compiled graph
    mine = fast.generate_fast(model, prompt, 40, draft=draft, attention=attention)
    assert mine == generate_cached(model, prompt, 40)


# Calls the attention kernel's GPU launcher with buffers of a GPU, so that `mojo build` for a
# GPU architecture compiles the kernel's GPU version; no GPU is needed to build it.
GPU_HARNESS = """
from std.memory import Pointer
from max.gpu.host import DeviceContext
from attention import heads_on_gpu


def anywhere[T: AnyType, o: MutOrigin](p: Pointer[T, o]) -> Pointer[T, MutAnyOrigin]:
    return p.unsafe_origin_cast[MutAnyOrigin]()


def main() raises:
    var ctx = DeviceContext()
    var x = ctx.enqueue_create_buffer[DType.float32](2 * 5 * 8)
    var length = ctx.enqueue_create_buffer[DType.int64](1)
    var p = anywhere(x.unsafe_ptr())
    heads_on_gpu(ctx, 2, p, p, p, p, p, p, p, anywhere(length.unsafe_ptr()), 8, 5, 0.5)
    ctx.synchronize()
"""


def test_the_attention_kernels_gpu_version_compiles_for_an_h100(tmp_path):
    """Step 16's GPU version has never run (no GPU was at hand), but it compiles: the
    reference kernel built for NVIDIA's sm_90 gives the GPU code of its per-head function."""
    from mojo.run import subprocess_run_mojo

    solution = course.solution_file(course.defining(kernels.ATTENTION_OP).number)
    (tmp_path / "attention").mkdir()
    (tmp_path / "attention" / "__init__.mojo").write_text(solution.read_text())
    (tmp_path / "harness.mojo").write_text(GPU_HARNESS)
    result = subprocess_run_mojo(
        ["build", "--target-accelerator", "sm_90", "--emit", "asm", "-I", str(tmp_path),
         str(tmp_path / "harness.mojo"), "-o", str(tmp_path / "harness.s")],
        capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    ptx = [p.read_text() for p in tmp_path.glob("*.ptx")]
    assert any(".target sm_90" in p and ".entry" in p and "gpu_head" in p for p in ptx), (
        f"no GPU code for gpu_head among {sorted(p.name for p in tmp_path.glob('*'))}"
    )
