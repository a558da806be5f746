"""Step 04 · Feed-forward network (GPT-2's MLP)."""

from checks.spec import HIDDEN_CASES, Mistake, module_step

SPEC = module_step(
    "GPT2MLP",
    build=lambda cls, config: cls(4 * config.n_embd, config),
    cases=HIDDEN_CASES,
    mistakes=(
        Mistake(
            "erf-gelu",
            "You use the exact (erf) GELU. GPT-2 was trained with the tanh approximation: "
            'F.gelu(x, approximate="tanh").',
            change={'F.gelu(hidden_states, approximate="tanh")': "F.gelu(hidden_states)"},
        ),
        Mistake(
            "relu",
            "You use ReLU. GPT-2's activation is GELU (tanh approximation): "
            'F.gelu(x, approximate="tanh").',
            change={'F.gelu(hidden_states, approximate="tanh")': "F.relu(hidden_states)"},
        ),
        Mistake(
            "quick-gelu",
            "x · sigmoid(1.702 x) is the 'quick' GELU of other models; GPT-2 uses the tanh "
            'approximation: F.gelu(x, approximate="tanh").',
            change={
                'F.gelu(hidden_states, approximate="tanh")': "hidden_states * F.sigmoid(1.702 * hidden_states)"
            },
        ),
        Mistake(
            "no-activation",
            "There is no activation between the two Linear layers, so together they are just "
            "one linear map. Apply GELU to c_fc's output.",
            change={'F.gelu(hidden_states, approximate="tanh")': "hidden_states"},
        ),
        Mistake(
            "activation-after-projection",
            "GELU goes between c_fc and c_proj, not after c_proj.",
            change={
                'hidden_states = F.gelu(hidden_states, approximate="tanh")': "",
                "return self.c_proj(hidden_states)": 'return F.gelu(self.c_proj(hidden_states), approximate="tanh")',
            },
        ),
    ),
    hint="The order is c_fc → GELU (tanh) → c_proj; both Linear layers have biases.",
)
