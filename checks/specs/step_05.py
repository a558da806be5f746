"""Step 05 · Token embeddings."""

from checks.spec import TOKEN_ID_CASES, Mistake, module_step

SPEC = module_step(
    "GPT2TokenEmbeddings",
    cases=TOKEN_ID_CASES,
    mistakes=(
        Mistake(
            "scaled-by-sqrt",
            "You multiply the embeddings by sqrt(n_embd), as the original Transformer paper "
            "does. GPT-2 does not: return the looked-up rows as they are.",
            change={
                "return self.wte(input_ids)": "return self.wte(input_ids) * int(self.wte.weight.shape[1]) ** 0.5"
            },
        ),
    ),
    hint="Each id picks one row of wte: output[b, t] = wte.weight[input_ids[b, t]].",
)
