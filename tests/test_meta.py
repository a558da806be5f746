"""The checker judges every step correctly: the untouched skeleton is "not started", the
reference passes, and every known mistake in a step's catalogue is caught with its own hint.

Every mistake is caught end to end, from a file, by ``test_known_mistake_is_caught_with_its_hint``;
``test_every_mistake_variant_is_told_apart`` shows, for module steps, that each changed
reference's numbers lead to its own hint. Everything runs on MAX's eager interpreter
(seconds a step); only step 14, which starts a server, is marked slow.
"""

from __future__ import annotations

import pytest

from checks import engine
from checks.engine import Context
from checks.spec import Mistake
from gpt2 import course
from gpt2.course import NOT_STARTED

NUMBERS = course.numbers()


def _starts_a_server(number: int) -> bool:
    return "GPT2PagedLMHeadModel" in course.step(number).names


MISTAKES = [
    pytest.param(
        n,
        i,
        id=f"{n:02d}-{m.name}",
        marks=[pytest.mark.slow] if _starts_a_server(n) else [],
    )
    for n in NUMBERS
    for i, m in enumerate(engine.spec(n).mistakes)
]
MODULE_STEPS = [n for n in NUMBERS if engine.spec(n).module is not None]


@pytest.mark.parametrize("number", NUMBERS)
def test_untouched_skeleton_is_not_started(number, cpu):
    report = engine.check(number, course.step_file(number), cpu)
    assert report.status == NOT_STARTED, report.first_failure()
    assert report.problem.file and report.problem.line


SOLUTIONS = [
    pytest.param(n, marks=[pytest.mark.slow] if _starts_a_server(n) else []) for n in NUMBERS
]


@pytest.mark.parametrize("number", SOLUTIONS)
def test_solution_passes(number, cpu):
    report = engine.check(number, course.solution_file(number), cpu)
    assert report.passed, report.first_failure()
    assert not report.hints


@pytest.mark.parametrize("number,index", MISTAKES)
def test_known_mistake_is_caught_with_its_hint(number, index, cpu, tmp_path):
    spec = engine.spec(number)
    path = tmp_path / f"step_{number:02d}{course.suffix(number)}"
    path.write_text(engine.mistake_source(number, spec.mistakes[index]))
    report = engine.check(number, path, cpu)
    assert report.status == "failed"
    assert report.hints == [spec.mistakes[index].hint], report.first_failure()


def test_step13_whole_text_fed_again_is_explained(cpu, tmp_path):
    """The chapter's fourth step-13 mistake lives in the loop and is not in the catalogue:
    feeding the whole text again on top of the cache must still fail with a message that
    says what to do instead."""
    loop = "logits, cache = run([token], cache)  # decode: one token, the cache holds the rest"
    again = (
        "prompt_ids = [*prompt_ids, token]\n"
        "            logits, cache = run(prompt_ids, cache)  # the whole text again"
    )
    source = engine.mistake_source(13, Mistake("whole-text-again", "", change={loop: again}))
    path = tmp_path / "step_13.py"
    path.write_text(source)
    report = engine.check(13, path, cpu)
    assert report.status == "failed"
    assert report.problem is not None, report.first_failure()
    assert "after the prefill, run one new token at a time" in report.problem.detail, report.problem


@pytest.mark.parametrize("number", MODULE_STEPS)
def test_every_mistake_variant_is_told_apart(number, cpu):
    """A learner whose outputs are variant i's, on every case, is diagnosed as mistake i: not
    as the reference, not as another mistake."""
    spec = engine.spec(number)
    ctx = Context(cpu, number)
    reference = engine.reference_module(number)
    expected = [spec.run(reference, case, ctx) for case in spec.cases]
    for mistake in spec.mistakes:
        assert mistake.detect is None, (
            f"{mistake.name}: a module step's mistake is run, not detected"
        )
        wrong = engine.with_mistake(number, mistake)
        answers = [spec.run(wrong, case, ctx) for case in spec.cases]
        failing = [
            (case, answer, want)
            for case, answer, want in zip(spec.cases, answers, expected, strict=True)
            if not spec.compare(answer, want, ctx.tolerance())[0]
        ]
        assert failing, (
            f"{mistake.name}: its numbers equal the reference's, the check cannot see it"
        )
        found = engine.match_mistake(spec, number, failing, ctx)
        assert found is mistake, f"{mistake.name} diagnosed as {found and found.name}"


def test_mistake_names_are_unique_per_step():
    for number in NUMBERS:
        names = [m.name for m in engine.spec(number).mistakes]
        assert len(names) == len(set(names)), number


def test_every_module_step_has_a_seq_len_one_case_and_two_shapes():
    for number in MODULE_STEPS:
        spec = engine.spec(number)
        assert len(spec.cases) >= 2, number
        assert any(c.sizes.get("seq") == 1 for c in spec.cases), number


def test_step13_kept_reference_answers_are_read_back_and_follow_the_reference(
    cpu, tmp_path, monkeypatch
):
    """Steps 12 and 13 keep the reference's answers on disk: a second check reads them back
    instead of compiling step 12's graph again, and any change to the sources they come
    from (here, one byte of a reference file) makes them computed anew."""
    import shutil

    monkeypatch.setenv(course.CACHE_ENV, str(tmp_path / "cache"))
    spec = engine.spec(13)
    assert spec.keep_expected
    ctx = Context(cpu, 13)
    first = engine.expected_answer(spec, 13, spec.cases[0], ctx)
    assert len(list((tmp_path / "cache" / "expected").glob("13-*.pickle"))) == 1
    computed = []
    monkeypatch.setattr(engine, "_reference_answer", lambda *args: computed.append(args))
    assert engine.expected_answer(spec, 13, spec.cases[0], ctx) == first and not computed
    engine.expected_answer(spec, 13, spec.cases[1], ctx)
    assert len(computed) == 1  # another case is not the same answer

    root = tmp_path / "course"
    for folder in ("solutions", "checks/specs", "gpt2", "checks/data/tiny-gpt2"):
        shutil.copytree(course.ROOT / folder, root / folder)
    edited = root / "solutions" / "solution_12.py"
    edited.write_text(edited.read_text() + "\n")
    monkeypatch.setattr(course, "ROOT", root)
    engine._reference_sources.cache_clear()
    try:
        engine.expected_answer(spec, 13, spec.cases[0], ctx)
    finally:
        engine._reference_sources.cache_clear()
    assert len(computed) == 2
