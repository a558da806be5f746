"""Step 04 · Feed-forward network (GPT-2's MLP)."""

from max.experimental import functional as F

from checks.spec import Case, Mistake, module_step


def with_activation(activation):
    def variant(cls):
        class Variant(cls):
            def forward(self, hidden_states):
                return self.c_proj(activation(self.c_fc(hidden_states)))

        return Variant

    return variant


def activation_after_projection(cls):
    class After(cls):
        def forward(self, hidden_states):
            return F.gelu(self.c_proj(self.c_fc(hidden_states)), approximate="tanh")

    return After


SPEC = module_step(
    "GPT2MLP",
    build=lambda cls, config: cls(4 * config.n_embd, config),
    cases=(
        Case(("batch", "seq", "n_embd"), {"batch": 2, "seq": 7}),
        Case(("batch", "seq", "n_embd"), {"batch": 3, "seq": 1}),
    ),
    mistakes=(
        Mistake(
            "erf-gelu",
            "You use the exact (erf) GELU. GPT-2 was trained with the tanh approximation: "
            'F.gelu(x, approximate="tanh").',
            variant=with_activation(F.gelu),
        ),
        Mistake(
            "relu",
            "You use ReLU. GPT-2's activation is GELU (tanh approximation): "
            'F.gelu(x, approximate="tanh").',
            variant=with_activation(F.relu),
        ),
        Mistake(
            "quick-gelu",
            "x · sigmoid(1.702 x) is the 'quick' GELU of other models; GPT-2 uses the tanh "
            'approximation: F.gelu(x, approximate="tanh").',
            variant=with_activation(lambda x: x * F.sigmoid(1.702 * x)),
        ),
        Mistake(
            "no-activation",
            "There is no activation between the two Linear layers, so together they are just "
            "one linear map. Apply GELU to c_fc's output.",
            variant=with_activation(lambda x: x),
        ),
        Mistake(
            "activation-after-projection",
            "GELU goes between c_fc and c_proj, not after c_proj.",
            variant=activation_after_projection,
        ),
    ),
    hint="The order is c_fc → GELU (tanh) → c_proj; both Linear layers have biases.",
)
