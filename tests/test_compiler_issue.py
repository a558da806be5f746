"""A learner whose code is right passes, even where MAX's compiler would get it wrong.

MAX 26.7 drops an attention mask built with F.where/F.greater once the graph is compiled
(eager mode is right: tests/test_troubleshooting.py provokes both). The checks run the
learner's module on MAX's eager interpreter, never compiled, so such a learner passes; and a
module with no mask at all is still told it has none.
"""

from __future__ import annotations

from checks import engine

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


def test_a_where_mask_passes_the_check(cpu, tmp_path):
    path = tmp_path / "step_07.py"
    path.write_text(WHERE_MASK_ATTENTION)
    report = engine.check(7, path, cpu)
    assert report.passed, report.first_failure()


def test_a_real_missing_mask_is_still_the_learners_mistake(cpu, tmp_path):
    spec = engine.spec(7)
    index = next(i for i, m in enumerate(spec.mistakes) if m.name == "no-mask")
    path = tmp_path / "step_07.py"
    path.write_text(engine.mistake_source(7, spec.mistakes[index]))
    report = engine.check(7, path, cpu)
    assert report.hints == [spec.mistakes[index].hint]
