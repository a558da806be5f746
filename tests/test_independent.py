"""A correct solution written in another style passes: the checker compares numbers, not text.

Each file below is a second, independent implementation of a step, deliberately unlike the
reference: other helper names, other attribute order, other but equivalent formulas
(LayerNorm from E[x²] − E[x]², GELU written out with tanh, embeddings as F.gather on the
table, the causal mask built with NumPy). Only the public names and HuggingFace's parameter
names, which are the course's contract, are kept.
"""

from __future__ import annotations

import pytest
from checker_helpers import assert_clean, run_checks

# Compiles graphs the default run does not (minutes on a machine that has not compiled
# them before); run with -m slow.
pytestmark = pytest.mark.slow

CONFIG = """
from dataclasses import dataclass, field


@dataclass
class GPT2Config:
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    vocab_size: int = 50_000 + 256 + 1  # merges, bytes, <|endoftext|>
    n_positions: int = 2**10
    n_inner: int | None = field(default=None)
    layer_norm_epsilon: float = 1e-5
"""

MASK = """
import numpy as np
from max.experimental.tensor import Tensor


def causal_mask(seq_len, past_len=0, *, dtype, device):
    query_at = past_len + np.arange(seq_len)[:, None]
    key_at = np.arange(past_len + seq_len)[None, :]
    table = np.where(key_at <= query_at, 0.0, -np.inf).astype(dtype.to_numpy())
    return Tensor.from_dlpack(table).to(device)
"""

LAYER_NORM = '''
from max.experimental import functional as F
from max.experimental.nn import Module
from max.experimental.tensor import Tensor


def moments(values):
    """Mean and (biased) variance of the last axis, the variance as E[x^2] - E[x]^2."""
    first = F.mean(values, axis=-1)
    second = F.mean(values * values, axis=-1)
    return first, second - first * first


class LayerNorm(Module):
    def __init__(self, dim, *, eps=1e-5):
        self.eps = eps
        self.bias = Tensor.zeros([dim])
        self.weight = Tensor.ones([dim])

    def forward(self, x):
        centre, spread = moments(x)
        return self.weight * ((x - centre) / F.sqrt(spread + self.eps)) + self.bias
'''

MLP = """
import math

from max.experimental import functional as F
from max.experimental.nn import Linear, Module


def gelu_written_out(x):
    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))
    return 0.5 * x * (1.0 + F.tanh(inner))


class GPT2MLP(Module):
    def __init__(self, intermediate_size, config):
        self.c_proj = Linear(intermediate_size, config.n_embd)
        self.c_fc = Linear(config.n_embd, intermediate_size)

    def forward(self, hidden_states):
        wide = hidden_states @ self.c_fc.weight.T + self.c_fc.bias  # Linear by hand
        return self.c_proj(gelu_written_out(wide))
"""

TABLE = '''
from max.experimental import functional as F
from max.experimental.nn import Module
from max.experimental.tensor import Tensor


class Table(Module):
    """A bare lookup table: rows of a learned matrix, picked with F.gather."""

    def __init__(self, rows, width):
        self.weight = Tensor.zeros([rows, width])

    def forward(self, ids):
        return F.gather(self.weight, ids, axis=0)
'''

TOKENS = (
    TABLE
    + """

class GPT2TokenEmbeddings(Module):
    def __init__(self, config):
        self.wte = Table(config.vocab_size, config.n_embd)

    def forward(self, input_ids):
        return F.gather(self.wte.weight, input_ids, axis=0)
"""
)

POSITIONS = (
    TABLE
    + """

class GPT2PositionEmbeddings(Module):
    def __init__(self, config):
        self.wpe = Table(config.n_positions, config.n_embd)

    def forward(self, position_ids):
        return self.wpe(position_ids)
"""
)

SERVED = """
import math

from max.dtype import DType
from max.experimental import functional as F
from max.experimental.nn import Module, ModuleList
from max.experimental.nn.common_layers.functional_kernels import flash_attention_ragged
from max.experimental.tensor import Tensor
from max.nn import kernels
from max.nn.attention import MHAMaskVariant

from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_08 import GPT2Block
from solutions.solution_10 import GPT2LMHeadModel

store = F.functional(kernels.kv_cache_store_paged_ragged)


class GPT2PagedAttention(GPT2MultiHeadAttention):
    def __init__(self, config, kv_params, layer):
        super().__init__(config)
        self.kv_params, self.layer = kv_params, layer

    def forward(self, hidden_states, cache, input_row_offsets):
        width = self.n_head * self.head_dim
        qkv = self.c_attn(hidden_states)
        per_head = lambda x: x.reshape([-1, self.n_head, self.head_dim])  # noqa: E731
        where = F.constant(self.layer, DType.uint32, device=input_row_offsets.device)
        for which, part in ((0, qkv[:, width : 2 * width]), (1, qkv[:, 2 * width :])):
            store(cache, per_head(part), input_row_offsets, where, key_or_value=which)
        attended = flash_attention_ragged(
            self.kv_params, per_head(qkv[:, :width]), input_row_offsets, cache, where,
            mask_variant=MHAMaskVariant.CAUSAL_MASK, scale=self.head_dim**-0.5,
        )
        return self.c_proj(attended.reshape([-1, width]))


def ragged_positions(input_row_offsets, cache_lengths, total):
    starts = F.cast(input_row_offsets[:-1], DType.int64)
    token = F.arange(0, total, 1, out_dim=total, dtype=DType.int64, device=starts.device)
    # A token's request: the last request that starts at or before it.
    owner = F.sum(F.cast(starts[None, :] <= token[:, None], DType.int64), axis=1)[:, 0] - 1
    offset = F.gather(F.cast(cache_lengths, DType.int64) - starts, owner, axis=0)
    return token + offset


class Block(GPT2Block):
    def __init__(self, config, kv_params, layer):
        super().__init__(config)
        self.attn = GPT2PagedAttention(config, kv_params, layer)

    def forward(self, x, cache, offsets):
        x = self.attn(self.ln_1(x), cache, offsets) + x
        return self.mlp(self.ln_2(x)) + x


class GPT2PagedLMHeadModel(GPT2LMHeadModel):
    def __init__(self, config, kv_params):
        super().__init__(config)
        self.transformer.h = ModuleList([Block(config, kv_params, n) for n in range(config.n_layer)])

    def forward(self, tokens, cache, input_row_offsets):
        body = self.transformer
        where = ragged_positions(
            input_row_offsets, Tensor.from_graph_value(cache.cache_lengths), tokens.shape[0]
        )
        x = body.wpe(where) + body.wte(tokens)
        for block in body.h:
            x = block(x, cache, input_row_offsets)
        ends = F.cast(input_row_offsets[1:], DType.int64) - 1
        return self.lm_head(body.ln_f(F.gather(x, ends, axis=0)))
"""

ALTERNATIVES = {
    "01": CONFIG,
    "02": MASK,
    "03": LAYER_NORM,
    "04": MLP,
    "05": TOKENS,
    "06": POSITIONS,
    "14": SERVED,
}


@pytest.mark.parametrize("step", sorted(ALTERNATIVES))
def test_an_independent_correct_implementation_passes(step, tmp_path):
    path = tmp_path / f"my_step_{step}.py"
    path.write_text(ALTERNATIVES[step].lstrip())
    result = run_checks(step, "--file", str(path))
    assert_clean(result.stdout)
    assert result.returncode == 0, result.stdout
    assert f"PASSED step {step}" in result.stdout
    assert "hint" not in result.stdout


def test_the_same_style_with_one_slip_fails(tmp_path):
    """The test above could not pass by accident: one changed comparison is caught."""
    path = tmp_path / "my_step_02.py"
    path.write_text(MASK.replace("key_at <= query_at", "key_at < query_at").lstrip())
    result = run_checks("02", "--file", str(path))
    assert_clean(result.stdout)
    assert result.returncode == 1, result.stdout
    assert "FAILED step 02" in result.stdout
    assert "also hides the diagonal" in result.stdout  # recognised by its numbers alone
