"""``gpt2.fast``: step 13's model with a cache of fixed capacity chooses step 13's tokens.

On the tiny GPT-2 (64 positions): greedy ids equal ``generate_cached``'s, with and without
the drafter's guesses, for texts that fill the smallest capacity exactly, cross into the
next one, and reach the model's context, and when the guesses are often wrong; a seed gives
the tokens ``generate_cached`` gives with that seed; each compiled graph's logits equal the
plain model's on the whole text. The Q6_K blocks are checked against gguf's own reader.
"""

from __future__ import annotations

import numpy as np
import pytest
from max.dtype import DType

from gpt2 import compiled, course, fast


@pytest.fixture(scope="module")
def model(cpu):
    from solutions.solution_11 import load_pretrained

    return load_pretrained(course.TINY_GPT2, device=cpu.device)[1]


def test_capacity_is_the_next_power_of_two_within_the_context():
    assert [fast.capacity_for(n, 1024) for n in (1, 64, 65, 80, 1000, 1024)] == [
        64,
        64,
        128,
        128,
        1024,
        1024,
    ]
    assert fast.capacity_for(100, 64) == 64


@pytest.mark.parametrize("draft", [fast.DRAFT, 0], ids=["drafted", "one-by-one"])
@pytest.mark.parametrize(
    "prompt,new",
    [((287, 257, 263, 89, 272, 294, 76), 57), ((5,), 40), ((40, 69, 76), 3), ((9, 8), 62)],
    ids=["fills-64", "short-prompt", "three-tokens", "whole-context"],
)
def test_greedy_ids_equal_generate_cached(model, prompt, new, draft):
    from solutions.solution_13 import generate_cached

    expected = generate_cached(model, list(prompt), new)
    assert fast.generate_fast(model, list(prompt), new, draft=draft) == expected


def test_wrong_guesses_are_replaced_by_float32s_choices(model, monkeypatch):
    """A drafter that guesses wrong every other time: the ids stay generate_cached's."""
    from max.experimental.tensor import Tensor

    from solutions.solution_13 import generate_cached

    one = fast.compile_decoder(model, fast.ONE)
    calls = []

    def wrong_now_and_then(ids, start, *cache):
        logits, new_keys, new_values = one(ids, start, *cache)
        calls.append(1)
        if len(calls) % 2:
            logits = Tensor.from_dlpack(np.roll(compiled.to_host(logits), 1, axis=-1))
        return logits, new_keys, new_values

    monkeypatch.setitem(fast._DECODERS[model], (fast.DRAFTER, None), wrong_now_and_then)
    prompt = [287, 257, 263, 89, 272, 294, 76]
    assert fast.generate_fast(model, prompt, 30) == generate_cached(model, prompt, 30)
    assert len(calls) > 10


def test_a_seed_gives_generate_cacheds_tokens(model):
    from solutions.solution_13 import generate_cached

    knobs = dict(temperature=0.9, top_k=40, top_p=0.95, seed=11)
    assert fast.generate_fast(model, [5, 17], 20, **knobs) == generate_cached(
        model, [5, 17], 20, **knobs
    )


def test_every_graph_gives_the_whole_models_logits(model):
    """The prompt's rows, three tokens after it and one after those, each graph on the
    same cache: the logits of the plain model on the whole text at those positions."""
    ids = [287, 257, 263, 89, 272, 294, 76, 3, 9, 41, 8]
    whole = compiled.to_host(
        compiled.compile_model(model)(
            compiled.to_device(np.asarray([ids], dtype=np.int64), model.device)
        )
    )[0]
    cache = fast.FixedCache(model, 64)
    rows = fast.compile_decoder(model, fast.ROWS)
    parts = [cache.run(rows, ids[:7]), cache.run(rows, ids[7:10])]
    parts.append(cache.run(fast.compile_decoder(model, fast.ONE), ids[10:]))
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-4, rtol=1e-4)
    assert cache.length == len(ids)
    assert cache.keys.shape == (2, 4, 64, 8)  # n_layer, n_head, capacity, head_dim


def test_q6_k_blocks_read_back_with_gguf():
    """``quantize_q6_k`` writes GGUF's layout: gguf's own reader gets the matrix back,
    each weight within a step of its block (about 2% of the weights' size on average)."""
    from gguf import GGMLQuantizationType, dequantize

    matrix = np.random.default_rng(1).standard_normal((40, 512), dtype=np.float32) * 0.02
    matrix[3] = 0.0  # a row of zeros stays zeros
    blocks = fast.quantize_q6_k(matrix)
    assert blocks.shape == (40, 2 * 210) and blocks.dtype == np.uint8
    back = dequantize(blocks, GGMLQuantizationType.Q6_K)
    assert np.abs(back - matrix).mean() < 0.03 * np.abs(matrix).mean()
    assert not back[3].any()


def test_a_q6_linear_multiplies_like_its_matrix_read_back(cpu):
    """The drafter's layer, compiled: x @ Wᵀ + b with W as its Q6_K blocks hold it (MAX
    rounds the row to 8 bits, hence the tolerance); 40 outputs, padded to 64 inside."""
    from gguf import GGMLQuantizationType, dequantize
    from max.experimental import functional as F
    from max.experimental.nn import Linear, Module
    from max.experimental.tensor import Tensor, TensorType, default_device

    class Holder(Module):
        def __init__(self):
            self.proj = Linear(512, 40)

        def forward(self, x):
            return self.proj(x)

    rng = np.random.default_rng(2)
    weight = rng.standard_normal((40, 512), dtype=np.float32) * 0.02
    bias = rng.standard_normal(40, dtype=np.float32)
    with F.lazy(), default_device(cpu.device):
        holder = Holder()
    floats = {"proj.weight": weight, "proj.bias": bias}
    state = fast.quantized_state(holder, {k: Tensor.from_dlpack(v) for k, v in floats.items()})
    assert type(holder.proj) is fast.Q6Linear
    graph = holder.compile(TensorType(DType.float32, [3, 512], device=cpu.device), weights=state)
    x = rng.standard_normal((3, 512), dtype=np.float32)
    out = compiled.to_host(graph(compiled.to_device(x, cpu.device)))
    read_back = dequantize(fast.quantize_q6_k(weight), GGMLQuantizationType.Q6_K)
    np.testing.assert_allclose(out, x @ read_back.T + bias, atol=0.02)
