"""Whatever a learner's file does, the checker answers with one clear screen.

Each test writes a broken step file to tmp_path, runs `python -m checks NN --file PATH` in a
subprocess (exactly what a learner runs), and asserts: a non-zero exit, the expected
explanation, no raw traceback, no path into MAX's package, no second report, and the file's
bytes unchanged. The broken files are the reference solutions with one edit, so they follow
the solutions as those change.

Most cases fail before MAX compiles anything. The wrong-output cases (shape, dtype, NaN, inf)
compile one small graph each the first time (seconds to a couple of minutes, then cached).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from checker_helpers import ROOT, assert_clean, run_checks

MLP = (ROOT / "solutions" / "solution_04.py").read_text()
MLP_RETURN = "        return self.c_proj(hidden_states)\n"
MLP_INIT = "        self.c_fc = Linear(config.n_embd, intermediate_size)"
TOKENS = (ROOT / "solutions" / "solution_05.py").read_text()
TOKENS_RETURN = re.search(r"        return self\.wte\(input_ids\).*\n", TOKENS).group(0)
IMPORTS = "from solutions.solution_01 import GPT2Config\n"


def edit(source: str, old: str, new: str) -> str:
    assert old in source, f"the reference changed: {old!r} is gone; update this test"
    return source.replace(old, new, 1)


def check(tmp_path: Path, step: str, source: str | bytes, *extra: str, name="step.py"):
    """Run the check on ``source``; return (exit status, output). The file must not change."""
    path = tmp_path / name
    if isinstance(source, bytes):
        path.write_bytes(source)
    else:
        path.write_text(source)
    before = path.read_bytes()
    result = run_checks(step, "--file", str(path), *extra)
    assert path.read_bytes() == before, "the checker changed the learner's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name], "the checker wrote next to it"
    output = result.stdout
    assert_clean(output)
    assert output.count(f"Step {int(step):02d} · ") == 1, output  # one report, one screen
    assert len(output.splitlines()) <= 30, output
    assert result.returncode != 0, output
    return result.returncode, output


def test_syntax_error_shows_file_line_and_caret(tmp_path):
    source = edit(
        MLP, "hidden_states = self.c_fc(hidden_states)", "hidden_states = self.c_fc(hidden_states"
    )
    _, out = check(tmp_path, "04", source)
    assert "Python cannot read your file" in out
    line = next(i for i, ln in enumerate(source.splitlines(), 1) if "self.c_fc(hidden_states" in ln)
    assert f"step.py:{line}" in out
    lines = out.splitlines()
    at = next(
        i for i, ln in enumerate(lines) if ln.strip() == "hidden_states = self.c_fc(hidden_states"
    )
    caret = lines[at + 1]
    assert caret.strip() == "^"
    assert caret.index("^") == lines[at].index("(")  # under the bracket never closed


def test_import_error_names_the_line_and_the_missing_name(tmp_path):
    source = edit(
        MLP,
        "from max.experimental import functional as F",
        "from max.experimental import functionall as F",
    )
    _, out = check(tmp_path, "04", source)
    assert "ImportError while importing your file" in out
    assert "functionall" in out
    assert "from max.experimental import functionall as F" in out


def test_missing_class(tmp_path):
    _, out = check(tmp_path, "04", edit(MLP, "class GPT2MLP(Module)", "class GPT2Mlp(Module)"))
    assert "does not define GPT2MLP" in out


def test_wrong_base_class(tmp_path):
    _, out = check(tmp_path, "04", edit(MLP, "class GPT2MLP(Module)", "class GPT2MLP(object)"))
    assert "GPT2MLP" in out and "is not a MAX Module" in out
    assert "class GPT2MLP(Module):" in out


def test_constructor_that_raises(tmp_path):
    source = edit(MLP, MLP_INIT, '        raise ValueError("no layers today")\n' + MLP_INIT)
    _, out = check(tmp_path, "04", source)
    assert "ValueError while building GPT2MLP" in out
    assert "no layers today" in out
    assert 'raise ValueError("no layers today")' in out


def test_forward_that_raises(tmp_path):
    source = edit(MLP, MLP_RETURN, '        raise RuntimeError("forward is broken")\n')
    _, out = check(tmp_path, "04", source)
    assert "RuntimeError while tracing GPT2MLP.forward" in out
    assert "forward is broken" in out
    assert "MAX says" not in out  # the learner raised it, not MAX


def test_max_error_in_forward_is_explained(tmp_path):
    source = edit(MLP, MLP_RETURN, "        return self.c_fc(hidden_states) @ self.c_proj.weight\n")
    _, out = check(tmp_path, "04", source)
    assert "MAX says" in out
    assert "must match" in out  # MAX's own diagnostic, not its list of inputs
    assert "usually means" in out


@pytest.mark.slow  # compiles its own graphs: minutes on a fresh machine
def test_wrong_output_shape(tmp_path):
    source = edit(TOKENS, TOKENS_RETURN, "        return F.sum(self.wte(input_ids), axis=-1)\n")
    source = edit(source, IMPORTS, IMPORTS + "from max.experimental import functional as F\n")
    _, out = check(tmp_path, "05", source)
    assert "shape [2, 7, 1], expected [2, 7, 48]" in out


@pytest.mark.slow  # compiles its own graphs: minutes on a fresh machine
def test_wrong_output_dtype(tmp_path):
    source = edit(TOKENS, TOKENS_RETURN, "        return self.wte(input_ids).cast(DType.float64)\n")
    source = edit(source, IMPORTS, IMPORTS + "from max.dtype import DType\n")
    _, out = check(tmp_path, "05", source)
    assert "dtype float64, expected float32" in out
    assert "Keep the output in the input's dtype" in out


@pytest.mark.slow  # compiles its own graphs: minutes on a fresh machine
def test_nan_in_output(tmp_path):
    source = edit(TOKENS, TOKENS_RETURN, '        return self.wte(input_ids) * float("nan")\n')
    _, out = check(tmp_path, "05", source)
    assert "NaN in your output" in out


@pytest.mark.slow  # compiles its own graphs: minutes on a fresh machine
def test_inf_in_output(tmp_path):
    source = edit(TOKENS, TOKENS_RETURN, '        return self.wte(input_ids) * float("inf")\n')
    _, out = check(tmp_path, "05", source)
    assert "differ in their infinities" in out
    assert "yours inf" in out or "yours -inf" in out


def test_forward_that_never_returns_is_stopped(tmp_path):
    source = edit(
        MLP, MLP_RETURN, "        while True:\n            hidden_states = hidden_states\n"
    )
    started = time.monotonic()
    _, out = check(tmp_path, "04", source, "--time-limit", "4")
    assert time.monotonic() - started < 120
    assert "did not finish within 4 s while tracing GPT2MLP.forward" in out
    assert "hidden_states = hidden_states" in out or "while True:" in out  # where it was
    assert "--time-limit" in out


def test_import_that_blocks_in_a_c_call_is_stopped(tmp_path):
    source = edit(MLP, IMPORTS, IMPORTS + "import threading\nthreading.Event().wait()\n")
    _, out = check(tmp_path, "04", source, "--time-limit", "4")
    assert "did not finish within 4 s while importing your file" in out
    assert "threading.Event().wait()" in out


def test_missing_file(tmp_path):
    result = run_checks("04", "--file", str(tmp_path / "nowhere.py"))
    assert result.returncode != 0
    assert_clean(result.stdout)
    assert "nowhere.py does not exist" in result.stdout
    assert not (tmp_path / "nowhere.py").exists()


@pytest.mark.parametrize("content", ["", "\n\n   \n"])
def test_empty_file(tmp_path, content):
    _, out = check(tmp_path, "04", content)
    assert "is empty" in out


def test_file_that_is_not_python_text(tmp_path):
    _, out = check(tmp_path, "04", b"class GPT2MLP:\n    pass\x00\n")
    assert "Python cannot read your file" in out


def test_file_that_prints_a_lot(tmp_path):
    source = edit(MLP, IMPORTS, IMPORTS + "for i in range(100_000):\n    print('noise', i)\n")
    source = edit(source, MLP_RETURN, '        raise RuntimeError("after the noise")\n')
    _, out = check(tmp_path, "04", source)
    assert "after the noise" in out
    assert "noise 0" in out
    assert "noise 99999" not in out
    assert re.search(r"\(\d+ more lines\)", out)


@pytest.mark.slow  # compiles its own graphs: minutes on a fresh machine
def test_printing_alone_is_not_a_failure(tmp_path):
    source = edit(MLP, MLP_RETURN, '        print("shape:", hidden_states.shape)\n' + MLP_RETURN)
    path = tmp_path / "step.py"
    path.write_text(source)
    result = run_checks("04", "--file", str(path))
    assert result.returncode == 0, result.stdout
    assert_clean(result.stdout)
    assert result.stdout.count("shape: [Dim(2), Dim(7), Dim(48)]") == 1  # each case's, once
    assert result.stdout.count("shape: [Dim(3), Dim(1), Dim(48)]") == 1


def test_sys_exit_at_import(tmp_path):
    source = edit(MLP, IMPORTS, IMPORTS + "import sys\nsys.exit(0)\n")
    code, out = check(tmp_path, "04", source)
    assert "Your code called sys.exit(0) while importing your file" in out
    assert code == 1


def test_sys_exit_in_forward(tmp_path):
    source = edit(MLP, MLP_RETURN, "        raise SystemExit(3)\n")
    _, out = check(tmp_path, "04", source)
    assert "sys.exit(3)" in out and "tracing GPT2MLP.forward" in out


def test_os_exit_is_reported_not_mistaken_for_success(tmp_path):
    source = edit(MLP, MLP_RETURN, "        import os\n        os._exit(0)\n")
    code, out = check(tmp_path, "04", source)
    assert "ended (exit status 0) while tracing GPT2MLP.forward" in out
    assert code == 1


def test_unknown_step_and_bad_options(tmp_path):
    result = run_checks("99")
    assert result.returncode == 2 and "No step '99'" in result.stdout
    result = run_checks("04", "--time-limit", "0")
    assert result.returncode == 2
    assert_clean(result.stdout)
