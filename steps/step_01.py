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
    # TODO: the seven fields of GPT-2 small's configuration, each with its value as the
    # default (the chapter's table). One line each; replace the method below.
    def __post_init__(self):
        raise NotImplementedError("GPT2Config")

    # ---- your code ends here ----


# ANCHOR_END: config
