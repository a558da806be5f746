"""Step 01 · Model configuration: the learner's defaults against HuggingFace's GPT2Config."""

import dataclasses

from checks.spec import Mistake, Spec
from gpt2.checkpoint import CONFIG_FIELDS

FIELDS = CONFIG_FIELDS  # GPT2Config's fields: the ones config.json fills in
MISSING = "<missing>"


def run(ns, case, ctx):
    if case == "dataclass":
        return dataclasses.is_dataclass(ns.GPT2Config)
    if case == "keywords":
        small = ns.GPT2Config(n_embd=48, n_head=4)
        return {f: getattr(small, f, MISSING) for f in ("n_embd", "n_head", "n_layer")}
    return getattr(ns.GPT2Config(), case, MISSING)


def expected(case, ctx):
    if case in FIELDS:  # the truth is HuggingFace's GPT-2, not our own solution
        from transformers import GPT2Config as HFConfig

        return getattr(HFConfig(), case)
    from solutions import solution_01

    return run(solution_01, case, ctx)


def compare(actual, wanted, tol=None):
    if actual == MISSING:
        return False, "no such field"
    if actual != wanted or type(actual) is not type(wanted):
        return False, f"{actual!r}, expected {wanted!r}"
    return True, repr(actual)


SPEC = Spec(
    cases=("dataclass", *FIELDS, "keywords"),
    run=run,
    expected=expected,
    compare=compare,
    describe=lambda case: {
        "dataclass": "GPT2Config is a dataclass",
        "keywords": "GPT2Config(n_embd=48, n_head=4) keeps the other defaults",
    }.get(case, case),
    mistakes=(
        Mistake(
            "vocab-off-by-one",
            "GPT-2's vocabulary has 50,257 tokens: 50,000 merges, 256 bytes and "
            "<|endoftext|>. 50256 is the id of <|endoftext|>, the last token, not the count.",
            change={"= 50257": "= 50256"},
        ),
        Mistake(
            "vocab-padded",
            "50304 is the vocabulary padded to a multiple of 64, a speed trick of some training "
            "code; the released checkpoint has 50,257 rows.",
            change={"= 50257": "= 50304"},
        ),
        Mistake(
            "n-inner-explicit",
            "Leave n_inner as None: it means 4 × n_embd. A fixed 3072 would be wrong for every "
            "smaller config, such as the ones the checks build.",
            change={"n_inner: int | None = None": "n_inner: int | None = 3072"},
        ),
        Mistake(
            "bert-epsilon",
            "GPT-2's LayerNorm epsilon is 1e-5; 1e-12 is BERT's and 1e-6 other models'.",
            detect=lambda actual, wanted: isinstance(actual, float) and actual in (1e-12, 1e-6),
            change={"= 1e-5": "= 1e-12"},
        ),
        Mistake(
            "gpt3-context",
            "GPT-2 has 1024 positions; 2048 is GPT-3's context length.",
            change={"= 1024": "= 2048"},
        ),
    ),
    hint="Chapter 01 lists the seven values of GPT-2 small (124M parameters).",
)
