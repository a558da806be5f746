"""Step 01 · Model configuration.

Every size in GPT-2 follows from seven numbers. Keeping them in one dataclass lets each
later step ask the config ("how wide is the model?") instead of hard-coding 768, so the
same code builds the tiny models the checks use and the real 124M-parameter GPT-2.
"""

from dataclasses import dataclass


# ANCHOR: config
@dataclass
class GPT2Config:
    """GPT-2 small's hyper-parameters, under the names HuggingFace uses."""

    # ---- your code starts here ----
    # TODO: declare the seven fields with GPT-2 small's values, using these names:
    #   vocab_size, n_positions, n_embd, n_layer, n_head, n_inner, layer_norm_epsilon
    # Each is one line: `name: type = default`. n_inner's type is `int | None`.
    def __post_init__(self):
        raise NotImplementedError("GPT2Config")

    # ---- your code ends here ----


# ANCHOR_END: config
