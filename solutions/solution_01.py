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
    vocab_size: int = 50257  # 50,000 BPE merges + 256 byte tokens + <|endoftext|>
    n_positions: int = 1024  # the longest context: one learned vector per position
    n_embd: int = 768  # the width of every token's vector (the residual stream)
    n_layer: int = 12  # how many transformer blocks are stacked
    n_head: int = 12  # attention heads per block; each sees 768 / 12 = 64 dimensions
    n_inner: int | None = None  # the MLP's hidden width; None means 4 * n_embd
    layer_norm_epsilon: float = 1e-5  # keeps LayerNorm from dividing by zero
    # ---- your code ends here ----


# ANCHOR_END: config
