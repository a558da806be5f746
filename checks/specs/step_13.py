"""Step 13 · KV cache: the cached model computes what the whole model computes.

Greedy ``generate_cached`` must give exactly the ids of the reference ``generate`` (no
cache), and the cached model run in two chunks (the second with past_len > 0 and several
new tokens, so a real mask) must give the logits of one full run. Known mistakes are the
reference with one class replaced by a wrong one. The cached model runs on MAX's eager
interpreter in a check (``gpt2.compiled.INTERPRET_TWINS``): an edited class needs no compile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from max.experimental import functional as F

from checks.spec import Mistake, Spec, compare_arrays, solution_with
from checks.specs import generation as g
from solutions.solution_13 import mask_with_past

PROMPT = (287, 257, 263, 89, 272, 294, 76)


@dataclass(frozen=True)
class Chunked:
    """The cached model on ids[:split], then ids[split:]: the last position's logits."""

    ids: tuple[int, ...]
    split: int

    def label(self, _function: str) -> str:
        return (
            f"cached model on {self.split} tokens, then {len(self.ids) - self.split} more "
            f"(past_len={self.split}): logits"
        )


CASES = (
    g.Greedy(PROMPT, 12),
    g.Greedy((0,), 8),
    g.Greedy(g.CONTEXT_PROMPT, 4),  # the last new token takes the context's last position
    Chunked(PROMPT + (3, 9), 5),
    g.Seeded(g.SAMPLE_PROMPT, 10),
)


def _chunked(cached_function, empty_cache, model, case: Chunked):
    run = cached_function(model)
    _, cache = run(list(case.ids[: case.split]), empty_cache(model))
    logits, _ = run(list(case.ids[case.split :]), cache)
    return np.asarray(logits)


def run(ns, case, ctx):
    if isinstance(case, Chunked):
        return _chunked(ns.cached_function, ns.empty_cache, ctx.model, case)
    return g.run_case(ns.generate_cached, ctx.model, case)


def expected(case, ctx):
    """What step 12's generate, which uses no cache at all, answers."""
    from solutions import solution_12

    if isinstance(case, Chunked):
        return solution_12.logits_function(ctx.model)(list(case.ids)).astype(np.float32)
    if isinstance(case, g.Seeded):
        return case
    return g.run_case(solution_12.generate, ctx.model, case)


def compare(actual, expected, tol):
    if isinstance(expected, np.ndarray):
        if not isinstance(actual, np.ndarray):
            return False, f"returned {type(actual).__name__}, expected logits"
        return compare_arrays(actual, expected, 1e-4 * tol.slack, 1e-4 * tol.slack)
    return g.compare(actual, expected)


# ---------------------------------------------------------------- known mistakes
# Each replaces one class of the reference by a wrong one; the engine runs the same cases.


def _no_append(cls):
    class NoAppend(cls):
        def forward(self, hidden_states, past_key, past_value):
            n = self.n_head * self.head_dim
            q, k, v = F.split(self.c_attn(hidden_states), [n, n, n], axis=-1)
            q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
            out = self.attend(q, k, v)  # only the new tokens' keys and values
            return self.c_proj(self.merge_heads(out)), k, v

    return NoAppend


def _cached_attention(new_first: bool = False, returns_new: bool = False):
    """The reference's attention with the cache put after the new tokens (``new_first``),
    or with only the new keys and values returned (``returns_new``)."""

    def variant(cls):
        class Wrong(cls):
            def forward(self, hidden_states, past_key, past_value):
                n = self.n_head * self.head_dim
                q, k, v = F.split(self.c_attn(hidden_states), [n, n, n], axis=-1)
                q, k, v = self.split_heads(q), self.split_heads(k), self.split_heads(v)
                keys, values = ([k, past_key], [v, past_value]) if new_first else (
                    [past_key, k], [past_value, v]
                )  # fmt: skip
                key, value = F.concat(keys, axis=2), F.concat(values, axis=2)
                scores = q @ key.transpose(-1, -2) / math.sqrt(self.head_dim)
                scores = scores + mask_with_past(
                    q.shape[2], past_key.shape[2], dtype=scores.dtype, device=scores.device
                )
                out = self.c_proj(self.merge_heads(F.softmax(scores, axis=-1) @ value))
                return (out, k, v) if returns_new else (out, key, value)

        return Wrong

    return variant


def _positions_from_zero(model_cls):
    class FromZero(model_cls):
        def forward(self, input_ids, past_keys, past_values):
            from max.dtype import DType

            t = self.transformer
            seq = input_ids.shape[1]
            positions = F.arange(0, seq, 1, dtype=DType.int64, device=input_ids.device)
            hidden = t.wte(input_ids) + t.wpe(positions)
            keys, values = [], []
            for i, block in enumerate(t.h):
                hidden, key, value = block(hidden, past_keys[i], past_values[i])
                keys.append(key)
                values.append(value)
            return self.lm_head(t.ln_f(hidden[:, -1])), F.stack(keys), F.stack(values)

    return FromZero


SPEC = Spec(
    cases=CASES,
    run=run,
    expected=expected,
    keep_expected=True,  # they come from step 12's compiled graph
    compare=compare,
    describe=lambda case: case.label("generate_cached"),
    mistakes=(
        Mistake(
            "cache-not-appended",
            "Your attention only sees the new tokens: put the cached keys and values in front "
            "of the new ones (F.concat([past_key, k], axis=2), same for v) and attend to all.",
            variant={"GPT2CachedAttention": _no_append},
            example=solution_with(
                13,
                "key = F.concat([past_key, k], axis=2)",
                "key = k",
                ("value = F.concat([past_value, v], axis=2)", "value = v"),
                ("q.shape[2], past_key.shape[2],", "q.shape[2], 0,"),
            ),
        ),
        Mistake(
            "cache-not-returned",
            "Your attention uses the cache but returns only the new keys and values, so the "
            "cache never grows: return the concatenated key and value.",
            variant={"GPT2CachedAttention": _cached_attention(returns_new=True)},
            example=solution_with(
                13,
                "return self.c_proj(self.merge_heads(out)), key, value",
                "return self.c_proj(self.merge_heads(out)), k, v",
            ),
        ),
        Mistake(
            "new-before-cached",
            "You put the new keys and values in front of the cached ones. The cache keeps the "
            "text's order, and the mask expects it: cached positions first, then the new "
            "ones (F.concat([past_key, k], axis=2), the same for the values).",
            variant={"GPT2CachedAttention": _cached_attention(new_first=True)},
            example=solution_with(
                13,
                "        key = F.concat([past_key, k], axis=2)\n        value = F.concat([past_value, v], axis=2)\n",
                "        key = F.concat([k, past_key], axis=2)\n        value = F.concat([v, past_value], axis=2)\n",
            ),
        ),
        Mistake(
            "positions-not-offset",
            "Your positions restart at 0 on every run. The new tokens continue the text: "
            "their positions are past_len, …, past_len + seq - 1.",
            variant={"GPT2CachedLMHeadModel": _positions_from_zero},
            example=solution_with(
                13,
                "F.arange(\n            past_len, past_len + seq, 1, out_dim=seq,",
                "F.arange(\n            0, seq, 1,",
            ),
        ),
    ),
    hint="After the prefill, run the cached model on the new token only: run([token], cache); "
    "the cache brings everything before it. To debug, compare one decode step by hand: the "
    "cached model on the prompt, then on one token, against step 12's logits_function on "
    "prompt + token; the last logits must agree.",
)
