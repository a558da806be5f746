"""Step 10 · Language-model head.

The check gives ``lm_head.weight`` and ``transformer.wte.weight`` different values. A tied
model uses one tensor for both (the engine gives every name of a shared tensor the same
value), so a model with a separate ``lm_head`` weight computes different logits.
"""

from checks.spec import TOKEN_ID_CASES, Mistake, module_step

SPEC = module_step(
    "GPT2LMHeadModel",
    cases=TOKEN_ID_CASES,
    mistakes=(
        Mistake(
            "untied",
            "Your lm_head has a weight of its own. GPT-2 ties it to the token table: assign "
            "the tensor itself, self.lm_head.weight = self.transformer.wte.weight, so one "
            "matrix serves both ends (a copy would not stay the same).",
            change={
                "self.lm_head.weight = self.transformer.wte.weight  # one tensor, two uses": ""
            },
        ),
        Mistake(
            "ln-f-twice",
            "You apply ln_f a second time: the body (step 09) already ends with it, so the "
            "head reads the body's output as it is: logits = lm_head(transformer(input_ids)).",
            change={
                "self.lm_head(self.transformer(input_ids))": "self.lm_head(self.transformer.ln_f(self.transformer(input_ids)))"
            },
        ),
        Mistake(
            "probabilities",
            "You return probabilities (a softmax). The model returns the raw logits; "
            "generation (step 12) applies the temperature and softmax itself.",
            change={
                "from max.experimental.nn import": "from max.experimental import functional as F\nfrom max.experimental.nn import",
                "return self.lm_head(self.transformer(input_ids))": "return F.softmax(self.lm_head(self.transformer(input_ids)), axis=-1)",
            },
        ),
    ),
    hint="Logits are lm_head(transformer(input_ids)), with lm_head a Linear without bias "
    "whose weight is transformer.wte.weight.",
)
