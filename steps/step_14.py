"""Step 14 · Serving with MAX.

Step 13 serves one prompt at a time, with a cache that belongs to that one text. A server
answers many clients at once, and MAX's serving stack (``max serve``) does the hard parts:
a scheduler that batches the requests in flight, a *paged* KV cache that hands out memory
in fixed-size pages as texts grow, and an OpenAI-compatible HTTP API.

What it asks of a model is a different shape of input. One run holds the new tokens of
every request in the batch, concatenated: a *ragged* batch ``tokens [total_tokens]``, with
``input_row_offsets [batch + 1]`` marking where each request starts and ends. The keys and
values of earlier tokens live in MAX's cache, which the model reads and writes through
MAX's kernels. Everything else is steps 03–10: the same layers, the same parameter names,
so step 11's conversion loads the same weights.

``gpt2.serving`` registers this model with MAX (config, weight adapter, pipeline model);
``python -m gpt2 serve`` starts the server on it.
"""

from __future__ import annotations

import math

from max.dtype import DType
from max.experimental import functional as F
from max.experimental.nn import ModuleList
from max.experimental.nn.common_layers.functional_kernels import (
    flash_attention_ragged,
    store_k_cache_ragged,
)
from max.experimental.tensor import Tensor
from max.nn.attention import MHAMaskVariant
from max.nn.kernels import store_v_cache_ragged as _store_v_cache_ragged
from max.nn.kv_cache import KVCacheParams, PagedCacheValues

from solutions.solution_01 import GPT2Config
from solutions.solution_07 import GPT2MultiHeadAttention
from solutions.solution_08 import GPT2Block
from solutions.solution_10 import GPT2LMHeadModel

store_v_cache_ragged = F.functional(_store_v_cache_ragged)


# ANCHOR: paged_attention
class GPT2PagedAttention(GPT2MultiHeadAttention):
    """Step 07's attention over a ragged batch, its keys and values in MAX's paged cache."""

    def __init__(self, config: GPT2Config, kv_params: KVCacheParams, layer: int):
        super().__init__(config)
        self.kv_params = kv_params
        self.layer = layer

    def forward(
        self, hidden_states: Tensor, cache: PagedCacheValues, input_row_offsets: Tensor
    ) -> Tensor:
        """[total_tokens, n_embd] → [total_tokens, n_embd]; this layer's new keys and
        values are written into the cache, at the end of each request's text."""
        layer = F.constant(self.layer, DType.uint32, device=input_row_offsets.device)
        # ---- your code starts here ----
        # TODO: as step 07's forward over [total_tokens, n_embd], but this layer's keys and
        # values go into MAX's paged cache and the attention reads them from there, causal
        # within each request. About 8 lines.
        raise NotImplementedError("GPT2PagedAttention.forward")
        # ---- your code ends here ----


# ANCHOR_END: paged_attention


class GPT2PagedBlock(GPT2Block):
    """Step 08's block around the paged attention; the same parameter names."""

    def __init__(self, config: GPT2Config, kv_params: KVCacheParams, layer: int):
        super().__init__(config)
        self.attn = GPT2PagedAttention(config, kv_params, layer)

    def forward(self, hidden_states: Tensor, cache: PagedCacheValues, input_row_offsets: Tensor):
        attended = self.attn(self.ln_1(hidden_states), cache, input_row_offsets)
        hidden_states = hidden_states + attended
        return hidden_states + self.mlp(self.ln_2(hidden_states))


# ANCHOR: positions
def ragged_positions(input_row_offsets: Tensor, cache_lengths: Tensor, total: int) -> Tensor:
    """The position of every token of a ragged batch in its own text: [total_tokens].

    A request's new tokens continue its text, which the cache already holds
    ``cache_lengths[r]`` tokens of.
    """
    # ---- your code starts here ----
    # TODO: each token's position in its own text: [total_tokens] int64, from the request it
    # belongs to, where that request starts, and how many of its tokens the cache holds.
    # About 6 lines.
    raise NotImplementedError("ragged_positions")
    # ---- your code ends here ----


# ANCHOR_END: positions


# ANCHOR: paged_model
class GPT2PagedLMHeadModel(GPT2LMHeadModel):
    """Step 10's model over a ragged batch with MAX's paged cache: the same parameters.

    ``forward(tokens [total_tokens], cache, input_row_offsets [batch + 1])`` returns the
    logits of each request's last token, [batch, vocab_size].
    """

    def __init__(self, config: GPT2Config, kv_params: KVCacheParams):
        super().__init__(config)
        self.transformer.h = ModuleList(
            [GPT2PagedBlock(config, kv_params, i) for i in range(config.n_layer)]
        )

    def forward(self, tokens: Tensor, cache: PagedCacheValues, input_row_offsets: Tensor) -> Tensor:
        t = self.transformer
        cache_lengths = Tensor.from_graph_value(cache.cache_lengths)
        # ---- your code starts here ----
        # TODO: as step 10's forward over a ragged batch, the positions from ragged_positions;
        # the head on each request's last token only. About 6 lines.
        raise NotImplementedError("GPT2PagedLMHeadModel.forward")
        # ---- your code ends here ----


# ANCHOR_END: paged_model
