"""Step 06 · Position embeddings."""

from checks.spec import Case, Mistake, module_step

SPEC = module_step(
    "GPT2PositionEmbeddings",
    cases=(
        Case(("seq",), {"seq": 7}, kind="positions"),
        Case(("seq",), {"seq": 1}, kind="positions"),
        Case(("batch", "seq"), {"batch": 2, "seq": 5}, kind="positions"),
    ),
    mistakes=(
        Mistake(
            "scaled-by-sqrt",
            "You multiply by sqrt(n_embd). GPT-2 adds the position vectors unscaled.",
            change={
                "return self.wpe(position_ids)": "return self.wpe(position_ids) * int(self.wpe.weight.shape[1]) ** 0.5"
            },
        ),
    ),
    hint="Look up the ids you are given. They need not be 0, 1, 2, …: with a KV cache "
    "(step 13) they start at past_len, and the check uses shuffled ids on purpose.",
)
