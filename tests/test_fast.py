"""``gpt2.fast``: step 13's model with a cache of fixed capacity chooses step 13's tokens.

On the tiny GPT-2 (64 positions): greedy ids equal ``generate_cached``'s, for texts that fill
the smallest capacity exactly, cross into the next one, and reach the model's context; a
seed gives the tokens ``generate_cached`` gives with that seed; one decode step's logits
equal the plain model's on the whole text.
"""

from __future__ import annotations

import numpy as np
import pytest

from checks import paths, runtime
from gpt2 import compiled, fast


@pytest.fixture(scope="module")
def model(cpu):
    from solutions.solution_11 import load_pretrained

    runtime.cache_every_compile(cpu)
    return load_pretrained(paths.TINY_GPT2, device=cpu.device)[1]


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


@pytest.mark.parametrize(
    "prompt,new",
    [((287, 257, 263, 89, 272, 294, 76), 57), ((5,), 40), ((40, 69, 76), 3), ((9, 8), 62)],
    ids=["fills-64", "short-prompt", "three-tokens", "whole-context"],
)
def test_greedy_ids_equal_generate_cached(model, prompt, new):
    from solutions.solution_13 import generate_cached

    assert fast.generate_fast(model, list(prompt), new) == generate_cached(model, list(prompt), new)


def test_a_seed_gives_generate_cacheds_tokens(model):
    from solutions.solution_13 import generate_cached

    knobs = dict(temperature=0.9, top_k=40, top_p=0.95, seed=11)
    assert fast.generate_fast(model, [5, 17], 20, **knobs) == generate_cached(
        model, [5, 17], 20, **knobs
    )


def test_a_decode_step_gives_the_whole_models_logits(model):
    from solutions.solution_12 import logits_function
    from solutions.solution_13 import GPT2CachedLMHeadModel

    ids = [287, 257, 263, 89, 272, 294, 76, 3]
    run = compiled.cached_function(model, GPT2CachedLMHeadModel)
    _, (keys, values) = run(ids[:-1], compiled.empty_cache(model))
    cache = fast.FixedCache(model, 64)
    cache.fill(compiled.to_host(keys), compiled.to_host(values))
    token = compiled.to_device(np.array([ids[-1]], dtype=np.int64), model.device)
    position = compiled.to_device(np.array([len(ids) - 1], dtype=np.int64), model.device)
    logits, key, value = fast.compile_decoder(model)(token, position, *cache.tensors())
    expected = logits_function(model)(ids)
    np.testing.assert_allclose(compiled.to_host(logits)[0], expected, atol=1e-4, rtol=1e-4)
    assert compiled.to_host(key).shape == (2, 4, 1, 8)  # n_layer, n_head, 1, head_dim


def test_bfloat16_matrices_stay_close_to_float32(model):
    """The opt-in bfloat16 decode: logits near float32's (its accuracy on GPT-2 small is
    measured by benchmarks/generate.py), and greedy ids that start like generate_cached's."""
    from max.dtype import DType

    from solutions.solution_13 import generate_cached

    prompt = [287, 257, 263, 89, 272, 294, 76]
    half = fast.generate_fast(model, prompt, 12, weights=DType.bfloat16)
    assert half[:4] == generate_cached(model, prompt, 12)[:4]
    cache = fast.FixedCache(model, 64)
    token = compiled.to_device(np.array([5], dtype=np.int64), model.device)
    position = compiled.to_device(np.array([0], dtype=np.int64), model.device)
    full, low = (
        compiled.to_host(fast.compile_decoder(model, w)(token, position, *cache.tensors())[0])
        for w in (DType.float32, DType.bfloat16)
    )
    assert np.abs(full - low).max() < 0.02 * (full.max() - full.min())
