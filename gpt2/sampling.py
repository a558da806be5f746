"""The sampling loop's checks, written once: clear errors before anything runs."""

from __future__ import annotations

from collections.abc import Sequence


def check_arguments(
    model, prompt_ids: Sequence[int], max_new_tokens: int, temperature: float, top_k, top_p
) -> None:
    """Raise ``ValueError`` for a request the model cannot serve, saying why."""
    if len(prompt_ids) == 0:
        raise ValueError("prompt_ids is empty: GPT-2 needs at least one token to continue")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be 0 or more, not {max_new_tokens}")
    context = int(model.config.n_positions)
    if len(prompt_ids) + max_new_tokens > context:
        raise ValueError(
            f"{len(prompt_ids)} prompt tokens + {max_new_tokens} new ones exceed the model's "
            f"context of {context} positions"
        )
    if temperature < 0:
        raise ValueError(f"temperature must be 0 (greedy) or more, not {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be 1 or more, not {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], not {top_p}")
