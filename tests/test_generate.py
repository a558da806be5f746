"""Steps 12 and 13: generation matches HuggingFace, and sampling follows its distribution.

Greedy decoding must equal ``transformers``' ``generate(do_sample=False)`` token for token
on the tiny fixture checkpoint, with and without the KV cache. Sampling is checked against
the distribution it should follow, computed here from HuggingFace's logits (the support
of top-k and top-p exactly, the frequencies of temperature sampling within a chi-square
bound), on fixed seeds, so every run gives the same verdict.
"""

from __future__ import annotations

import numpy as np
import pytest

from gpt2 import course
from solutions.solution_11 import load_pretrained
from solutions.solution_12 import generate, logits_function, next_token
from solutions.solution_13 import cached_function, empty_cache, generate_cached

ROOT = course.ROOT
TINY = ROOT / "checks" / "data" / "tiny-gpt2"
PROMPTS = [[287, 257, 263, 89, 272, 294, 76], [0], [5, 17, 200, 41]]


@pytest.fixture(scope="module")
def model(cpu):
    return load_pretrained(TINY)[1]


@pytest.fixture(scope="module")
def hf():
    pytest.importorskip("torch")
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(str(TINY)).eval()
    hf.generation_config.eos_token_id = None  # never stop early: compare every token
    hf.generation_config.pad_token_id = 0
    return hf


def hf_greedy(hf, prompt, n):
    import torch

    with torch.no_grad():
        ids = torch.tensor([prompt])  # an explicit mask: pad id 0 is a real token here
        out = hf.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False
        )
    return out[0, len(prompt) :].tolist()


def hf_last_logits(hf, ids) -> np.ndarray:
    import torch

    with torch.no_grad():
        return hf(torch.tensor([ids])).logits[0, -1].double().numpy()


# ----------------------------------------------------------------------- greedy


@pytest.mark.parametrize("prompt", PROMPTS, ids=["seven", "eos", "four"])
def test_greedy_generate_equals_huggingface(model, hf, prompt):
    expected = hf_greedy(hf, prompt, 24)
    assert generate(model, prompt, 24) == expected


@pytest.mark.parametrize("prompt", PROMPTS, ids=["seven", "eos", "four"])
def test_greedy_generate_cached_equals_huggingface(model, hf, prompt):
    expected = hf_greedy(hf, prompt, 24)
    assert generate_cached(model, prompt, 24) == expected


def test_logits_equal_huggingface(model, hf):
    ids = PROMPTS[0] + [3, 9, 100]
    np.testing.assert_allclose(logits_function(model)(ids), hf_last_logits(hf, ids), atol=1e-4)


def test_cache_with_past_and_several_new_tokens(model, hf):
    """Two chunks: the second run has past_len > 0 *and* several new tokens, so its mask
    is a real one, causal_mask(seq_len=4, past_len=5)."""
    ids = [287, 257, 263, 89, 272, 294, 76, 3, 9]
    run = cached_function(model)
    _, cache = run(ids[:5], empty_cache(model))
    logits, cache = run(ids[5:], cache)
    assert [int(d) for d in cache[0].shape][3] == len(ids)
    np.testing.assert_allclose(logits, hf_last_logits(hf, ids), atol=1e-4)


def test_only_the_new_ids_come_back(model):
    prompt = PROMPTS[0]
    assert len(generate(model, prompt, 5)) == 5
    assert generate(model, prompt, 0) == []
    assert generate_cached(model, prompt, 0) == []
    assert generate_cached(model, prompt, 1) == generate(model, prompt, 1)


def test_requests_the_model_cannot_serve_are_refused(model):
    with pytest.raises(ValueError, match="empty"):
        generate(model, [], 3)
    with pytest.raises(ValueError, match="context"):
        generate_cached(model, [1] * 60, 10)  # the fixture's context is 64
    with pytest.raises(ValueError, match="temperature"):
        generate(model, [1], 3, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        generate(model, [1], 3, temperature=1.0, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        generate_cached(model, [1], 3, temperature=1.0, top_p=1.5)


# ----------------------------------------------------------------------- seeds


def test_same_seed_same_ids_other_seed_other_ids(model):
    prompt = PROMPTS[2]
    first = generate(model, prompt, 16, temperature=1.0, seed=11)
    assert generate(model, prompt, 16, temperature=1.0, seed=11) == first
    assert generate(model, prompt, 16, temperature=1.0, seed=12) != first
    cached = generate_cached(model, prompt, 16, temperature=1.0, seed=11)
    assert generate_cached(model, prompt, 16, temperature=1.0, seed=11) == cached


def test_cached_sampling_draws_what_uncached_sampling_draws(model):
    for seed in range(3):
        kwargs = dict(temperature=0.9, top_k=20, top_p=0.9, seed=seed)
        assert generate_cached(model, PROMPTS[0], 12, **kwargs) == generate(
            model, PROMPTS[0], 12, **kwargs
        )


# ----------------------------------------------------------------------- distributions


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def chi_square_fits(counts: np.ndarray, probs: np.ndarray, z: float = 5.0) -> bool:
    """Whether ``counts`` could come from ``probs``: Pearson's chi-square below the
    quantile for a 5-sigma one-sided tail (Wilson-Hilferty); rare tokens are pooled."""
    n = counts.sum()
    if np.any((probs == 0) & (counts > 0)):
        return False
    big = probs * n >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(probs[big] * n, probs[~big].sum() * n)
    keep = exp > 0
    stat = float(np.sum((obs[keep] - exp[keep]) ** 2 / exp[keep]))
    df = max(int(keep.sum()) - 1, 1)  # one allowed token: the statistic is 0
    limit = df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3
    return stat <= limit


def _draws(logits, n=4000, **kwargs) -> np.ndarray:
    rng = np.random.default_rng(2024)
    counts = np.zeros(logits.size, dtype=np.int64)
    for _ in range(n):
        counts[next_token(logits, rng, **kwargs)] += 1
    return counts


@pytest.fixture(scope="module")
def logits(hf):
    return hf_last_logits(hf, PROMPTS[0])


def test_the_bound_rejects_a_wrong_distribution(logits):
    """The statistical test has teeth: sampling at temperature 1 does not pass for 0.5."""
    counts = _draws(logits, temperature=1.0)
    assert chi_square_fits(counts, _softmax(logits))
    assert not chi_square_fits(counts, _softmax(logits / 0.5))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7])
def test_temperature_frequencies_follow_the_softmax(logits, temperature):
    counts = _draws(logits, temperature=temperature)
    assert chi_square_fits(counts, _softmax(logits / temperature))


@pytest.mark.parametrize("k", [1, 3, 10])
def test_top_k_never_leaves_the_k_best(logits, k):
    best = np.argsort(-logits)[:k]
    counts = _draws(logits, n=1500, temperature=1.0, top_k=k)
    assert set(np.flatnonzero(counts)) <= set(best)
    probs = np.zeros_like(logits)
    probs[best] = _softmax(logits[best])
    assert chi_square_fits(counts, probs)


@pytest.mark.parametrize("p", [0.3, 0.6, 0.9])
def test_top_p_never_leaves_the_nucleus(logits, p):
    probs = _softmax(logits)
    order = np.argsort(-probs)
    size = int(np.searchsorted(np.cumsum(probs[order]), p) + 1)  # smallest set holding p
    nucleus = order[:size]
    counts = _draws(logits, n=1500, temperature=1.0, top_p=p)
    assert set(np.flatnonzero(counts)) <= set(nucleus)
    expected = np.zeros_like(probs)
    expected[nucleus] = probs[nucleus] / probs[nucleus].sum()
    assert chi_square_fits(counts, expected)


def test_greedy_ignores_the_generator(logits):
    rng = np.random.default_rng(0)
    assert {next_token(logits, rng) for _ in range(20)} == {int(np.argmax(logits))}


def test_generate_samples_within_top_k_of_the_model(model, hf):
    """Through the whole model: first tokens drawn with top_k=3 stay in HF's 3 best."""
    best = set(np.argsort(-hf_last_logits(hf, PROMPTS[0]))[:3].tolist())
    seen = {
        generate_cached(model, PROMPTS[0], 1, temperature=1.0, top_k=3, seed=s)[0]
        for s in range(40)
    }
    assert seen <= best and len(seen) > 1
