"""Step 03 · Layer normalization."""

from max.experimental import functional as F

from checks.spec import Case, Mistake, module_step


def unbiased_variance(cls):
    class Unbiased(cls):
        def forward(self, x):
            n = int(x.shape[-1])
            centered = x - F.mean(x, axis=-1)
            variance = F.sum(centered * centered, axis=-1) / (n - 1)
            return centered * F.rsqrt(variance + self.eps) * self.weight + self.bias

    return Unbiased


def eps_outside_sqrt(cls):
    class EpsOutside(cls):
        def forward(self, x):
            centered = x - F.mean(x, axis=-1)
            std = F.sqrt(F.mean(centered * centered, axis=-1))
            return centered / (std + self.eps) * self.weight + self.bias

    return EpsOutside


def no_eps(cls):
    class NoEps(cls):
        def forward(self, x):
            centered = x - F.mean(x, axis=-1)
            return (
                centered * F.rsqrt(F.mean(centered * centered, axis=-1)) * self.weight + self.bias
            )

    return NoEps


def uncentered_variance(cls):
    class Uncentered(cls):
        def forward(self, x):
            centered = x - F.mean(x, axis=-1)
            variance = F.mean(x * x, axis=-1)
            return centered * F.rsqrt(variance + self.eps) * self.weight + self.bias

    return Uncentered


def no_affine(cls):
    class NoAffine(cls):
        def forward(self, x):
            centered = x - F.mean(x, axis=-1)
            return centered * F.rsqrt(F.mean(centered * centered, axis=-1) + self.eps)

    return NoAffine


def times_std(cls):
    class TimesStd(cls):
        def forward(self, x):
            centered = x - F.mean(x, axis=-1)
            std = F.sqrt(F.mean(centered * centered, axis=-1) + self.eps)
            return centered * std * self.weight + self.bias

    return TimesStd


SPEC = module_step(
    "LayerNorm",
    # A larger epsilon than GPT-2's makes "where does eps go" visible in the numbers.
    build=lambda cls, config: cls(config.n_embd, eps=config.layer_norm_epsilon),
    cases=(
        Case(("batch", "seq", "n_embd"), {"batch": 2, "seq": 7}),
        Case(("batch", "seq", "n_embd"), {"batch": 3, "seq": 1}),
    ),
    mistakes=(
        Mistake(
            "unbiased-variance",
            "You divide the variance by n - 1. LayerNorm uses the biased variance: the mean of "
            "the squared deviations, divided by n.",
            variant=unbiased_variance,
        ),
        Mistake(
            "eps-outside-sqrt",
            "eps goes inside the square root: (x - mean) / sqrt(var + eps), not "
            "(x - mean) / (sqrt(var) + eps).",
            variant=eps_outside_sqrt,
        ),
        Mistake(
            "no-eps",
            "You left out eps. It is small, but it is part of the formula: "
            "(x - mean) / sqrt(var + eps).",
            variant=no_eps,
        ),
        Mistake(
            "uncentered-variance",
            "Your variance is the mean of x², not of (x - mean)²: subtract the mean first.",
            variant=uncentered_variance,
        ),
        Mistake(
            "no-affine",
            "You normalize correctly but skip the learned gain and shift: finish with "
            "* self.weight + self.bias.",
            variant=no_affine,
        ),
        Mistake(
            "times-std",
            "You multiply by the standard deviation; normalizing divides by it "
            "(F.rsqrt(v) is 1 / sqrt(v)).",
            variant=times_std,
        ),
    ),
    hint="Normalize over the last axis only (axis=-1), per token; the statistics of one "
    "token's features must not mix with another token's.",
)
