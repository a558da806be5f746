"""A learner whose code is right but whose numbers MAX's compiler gets wrong is told so.

MAX 26.7 drops an attention mask built with F.where/F.greater once the graph is compiled
(eager mode is right). Such a learner's compiled numbers look exactly like "no causal mask",
so the check must run their module eagerly before blaming them.
"""

from __future__ import annotations

import pytest

from checks import engine, registry

# Both cases run the learner's attention eagerly, which compiles each operation on its own:
# seconds when MAX's caches are warm, many minutes on a fresh machine.
pytestmark = pytest.mark.slow

WHERE_MASK_ATTENTION = """
import math

from max.experimental import functional as F
from max.experimental.tensor import Tensor

from solutions.solution_07 import GPT2MultiHeadAttention as _Reference


class GPT2MultiHeadAttention(_Reference):
    def attend(self, q, k, v):
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        seq = q.shape[-2]
        positions = Tensor.arange(0, seq, 1, out_dim=seq, dtype=scores.dtype, device=scores.device)
        rows = positions.reshape([seq, 1])
        cols = positions.reshape([1, seq])
        blocked = Tensor.full([seq, seq], float("-inf"), dtype=scores.dtype, device=scores.device)
        mask = F.where(F.greater(cols, rows), blocked, 0.0)
        return F.softmax(scores + mask, axis=-1) @ v
"""


def test_where_mask_is_reported_as_a_compiler_issue(cpu, tmp_path):
    path = tmp_path / "step_07.py"
    path.write_text(WHERE_MASK_ATTENTION)
    report = engine.run(registry.spec(7), path, cpu)
    assert report.status == "failed"
    assert report.hints == [engine.COMPILER_ISSUE], report.hints


def test_a_real_missing_mask_is_still_the_learners_mistake(cpu, tmp_path):
    spec = registry.spec(7)
    index = next(i for i, m in enumerate(spec.mistakes) if m.compiler_lookalike)
    path = tmp_path / "step_07.py"
    path.write_text(
        "from solutions.solution_07 import *  # noqa: F403\n"
        "from checks.specs.step_07 import SPEC\n"
        f"GPT2MultiHeadAttention = SPEC.mistakes[{index}].variant(GPT2MultiHeadAttention)  # noqa: F405\n"
    )
    report = engine.run(spec, path, cpu)
    assert report.hints == [spec.mistakes[index].hint]
