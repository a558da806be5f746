"""Step 03 · Layer normalization."""

from checks.spec import HIDDEN_CASES, Mistake, module_step

SPEC = module_step(
    "LayerNorm",
    # A larger epsilon than GPT-2's makes "where does eps go" visible in the numbers.
    build=lambda cls, config: cls(config.n_embd, eps=config.layer_norm_epsilon),
    cases=HIDDEN_CASES,
    mistakes=(
        Mistake(
            "unbiased-variance",
            "You divide the variance by n - 1. LayerNorm uses the biased variance: the mean of "
            "the squared deviations, divided by n.",
            change={
                "F.mean(centered * centered, axis=-1)": "F.sum(centered * centered, axis=-1) / (int(x.shape[-1]) - 1)"
            },
        ),
        Mistake(
            "eps-outside-sqrt",
            "eps goes inside the square root: (x - mean) / sqrt(var + eps), not "
            "(x - mean) / (sqrt(var) + eps).",
            change={"F.rsqrt(variance + self.eps)": "(1 / (F.sqrt(variance) + self.eps))"},
        ),
        Mistake(
            "no-eps",
            "You left out eps. It is small, but it is part of the formula: "
            "(x - mean) / sqrt(var + eps).",
            change={"F.rsqrt(variance + self.eps)": "F.rsqrt(variance)"},
        ),
        Mistake(
            "uncentered-variance",
            "Your variance is the mean of x², not of (x - mean)²: subtract the mean first.",
            change={"F.mean(centered * centered, axis=-1)": "F.mean(x * x, axis=-1)"},
        ),
        Mistake(
            "no-affine",
            "You normalize correctly but skip the learned gain and shift: finish with "
            "* self.weight + self.bias.",
            change={"return normalized * self.weight + self.bias": "return normalized"},
        ),
        Mistake(
            "times-std",
            "You multiply by the standard deviation; normalizing divides by it "
            "(F.rsqrt(v) is 1 / sqrt(v)).",
            change={"F.rsqrt(variance + self.eps)": "F.sqrt(variance + self.eps)"},
        ),
    ),
    hint="Normalize over the last axis only (axis=-1), per token; the statistics of one "
    "token's features must not mix with another token's.",
)
