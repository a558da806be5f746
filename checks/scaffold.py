"""`python -m checks new-step "Title"`: the four parts of a new step, registered, ready to fill.

It writes, with the next free number NN:

* ``solutions/solution_NN.py``: a placeholder reference that passes its own check;
* ``steps/step_NN.py``: the same file with the learner's regions replaced by TODOs;
* ``checks/specs/step_NN.py``: the check, with an empty catalogue of known mistakes;
* ``book/src/step_NN.md``: the chapter, including both files through mdBook anchors;

and registers the step: an entry in the course's manifest (``course.toml``), a ``sNN`` task in
``pixi.toml``, an entry in the book's ``SUMMARY.md`` and a row in README's table, each after
the last step. The consistency tests pass at once; the contributor then replaces the
placeholder with the real step. Nothing is ever overwritten.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from checks import paths

ROOT = paths.ROOT

START = "# ---- your code starts here ----"
END = "# ---- your code ends here ----"
_NUMBERED = re.compile(r"(?:step|solution)_(\d\d)\.(?:py|md)")


@dataclass
class Names:
    number: int
    title: str
    kind: str  # module | function
    public: str  # the class or function the step defines
    anchor: str  # the mdBook anchor around it

    @property
    def nn(self) -> str:
        return f"{self.number:02d}"

    @property
    def title_literal(self) -> str:  # a Python string literal, double-quoted
        return json.dumps(self.title, ensure_ascii=False)


def next_number(root: Path = ROOT) -> int:
    """One more than the highest number any part of any step uses (half-written ones too)."""
    used = [0]
    for folder in ("steps", "solutions", "checks/specs", "book/src"):
        directory = root / folder
        if directory.is_dir():
            for path in directory.iterdir():
                m = _NUMBERED.fullmatch(path.name)
                if m:
                    used.append(int(m.group(1)))
    return max(used) + 1


def names_for(title: str, kind: str, number: int) -> Names:
    words = re.findall(r"[A-Za-z0-9]+", title)
    if not words:
        raise ValueError("the title needs at least one letter or digit")
    snake = "_".join(w.lower() for w in words)
    if snake[0].isdigit():
        snake = f"step_{snake}"
    if kind == "module":
        camel = "".join(w[:1].upper() + w[1:] for w in words)
        public = camel if camel[0].isalpha() else f"Step{camel}"
    else:
        public = snake
    return Names(number, title.strip(), kind, public, snake)


# --------------------------------------------------------------------------- templates


def _module_source(n: Names, learner: bool) -> str:
    if learner:
        init = (
            f"        # TODO: create the parameters (HuggingFace's names), e.g.\n"
            f"        #   self.proj = Linear(config.n_embd, config.n_embd)\n"
            f'        raise NotImplementedError("{n.public}.__init__")\n'
        )
        forward = (
            "        # TODO: compute the output from hidden_states.\n"
            f'        raise NotImplementedError("{n.public}.forward")\n'
        )
    else:
        init = "        self.proj = Linear(config.n_embd, config.n_embd)  # placeholder\n"
        forward = "        return self.proj(hidden_states)  # placeholder\n"
    return f'''"""Step {n.nn} · {n.title}.

TODO(contributor): what this step builds and why GPT-2 needs it, in two or three sentences.
"""

from max.experimental.nn import Linear, Module
from max.experimental.tensor import Tensor

from solutions.solution_01 import GPT2Config


# ANCHOR: {n.anchor}
class {n.public}(Module):
    """TODO(contributor): what it computes: [batch, seq, n_embd] → [batch, seq, n_embd]."""

    def __init__(self, config: GPT2Config):
        {START}
{init}        {END}

    def forward(self, hidden_states: Tensor) -> Tensor:
        {START}
{forward}        {END}
# ANCHOR_END: {n.anchor}
'''


def _function_source(n: Names, learner: bool) -> str:
    if learner:
        body = (
            f'    # TODO: compute the result from x.\n    raise NotImplementedError("{n.public}")\n'
        )
    else:
        body = "    return 2.0 * x  # placeholder\n"
    return f'''"""Step {n.nn} · {n.title}.

TODO(contributor): what this step builds and why GPT-2 needs it, in two or three sentences.
"""


# ANCHOR: {n.anchor}
def {n.public}(x: float) -> float:
    """TODO(contributor): what it returns."""
    {START}
{body}    {END}
# ANCHOR_END: {n.anchor}
'''


def _module_spec(n: Names) -> str:
    return f'''"""Step {n.nn} · {n.title}."""

from checks.spec import Case, Mistake, ModuleStep  # noqa: F401 - Mistake: see the catalogue

SPEC = ModuleStep(
    number={n.number},
    name="{n.public}",
    build=lambda cls, config: cls(config),
    # Every module step checks at least two shapes, one of them with seq=1.
    cases=(
        Case(("batch", "seq", "n_embd"), {{"batch": 2, "seq": 7}}),
        Case(("batch", "seq", "n_embd"), {{"batch": 3, "seq": 1}}),
    ),
    # Known mistakes: build each wrong version from the reference class, e.g.
    #   def no_bias(cls):
    #       class NoBias(cls):
    #           def forward(self, hidden_states):
    #               return hidden_states @ self.proj.weight.T
    #       return NoBias
    #   Mistake("no-bias", "The hint the learner sees.", variant=no_bias),
    mistakes=(),
    hint="TODO(contributor): what to look at when the numbers are wrong.",
)
'''


def _function_spec(n: Names) -> str:
    return f'''"""Step {n.nn} · {n.title}."""

from checks.spec import Mistake, ValueStep  # noqa: F401 - Mistake: see the catalogue


def evaluate(ns, case, target):
    return ns.{n.public}(case)


def compare(actual, expected):
    if actual == expected and type(actual) is type(expected):
        return True, repr(actual)
    return False, f"{{actual!r}}, expected {{expected!r}}"


SPEC = ValueStep(
    number={n.number},
    cases=(1.0, -3.0),
    evaluate=evaluate,
    compare=compare,
    describe=lambda case: f"{n.public}({{case!r}})",
    # Known mistakes: Mistake("name", "hint", variant=lambda reference, case: wrong_value)
    mistakes=(),
    hint="TODO(contributor): what to look at when the values are wrong.",
)
'''


def _chapter(n: Names) -> str:
    call = f"{n.public}(config)" if n.kind == "module" else f"{n.public}(x)"
    return f"""# Step {n.nn} · {n.title}

<div class="goal">

**Goal:** write `{call}`: TODO(contributor).
**File:** `steps/step_{n.nn}.py` · **Check:** `pixi run s{n.nn}`

</div>

TODO(contributor): why this step exists and what it computes, with shapes.

## Your task

```python
{{{{#include ../../steps/step_{n.nn}.py:{n.anchor}}}}}
```

## Common mistakes

TODO(contributor): one item per known mistake in `checks/specs/step_{n.nn}.py`.

## Check it

```console
$ pixi run s{n.nn}
```

(or `python -m checks {n.nn}`).

<details>
<summary>Solution</summary>

```python
{{{{#include ../../solutions/solution_{n.nn}.py:{n.anchor}}}}}
```

</details>
"""


# --------------------------------------------------------------------------- registration


def _with_pixi_task(text: str, n: Names) -> str | None:
    """pixi.toml with the sNN task added after the last step task (None: already there)."""
    line = f's{n.nn} = "python -m checks {n.nn}"'
    if re.search(rf"^s{n.nn}\s*=", text, re.M):
        return None
    lines = text.splitlines(keepends=True)
    last = max((i for i, ln in enumerate(lines) if re.match(r"s\d\d\s*=", ln)), default=None)
    if last is None:
        last = next((i for i, ln in enumerate(lines) if ln.strip() == "[tasks]"), None)
        if last is None:
            lines.append("\n[tasks]\n")
            last = len(lines) - 1
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(last + 1, line + "\n")
    return "".join(lines)


def _with_summary_entry(text: str, n: Names) -> str | None:
    """SUMMARY.md with the chapter listed after the last step (None: already there)."""
    if f"(step_{n.nn}.md)" in text:
        return None
    entry = f"- [{n.title}](step_{n.nn}.md)\n"
    lines = text.splitlines(keepends=True)
    last = max(
        (i for i, ln in enumerate(lines) if re.search(r"\(step_\d\d\.md\)", ln)), default=None
    )
    if last is None:
        return text + ("" if text.endswith("\n") else "\n") + entry
    indent = re.match(r"\s*", lines[last]).group(0)
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(last + 1, indent + entry)
    return "".join(lines)


def _with_manifest_entry(text: str, n: Names) -> str | None:
    """course.toml with the step's entry added at the end (None: already there)."""
    if re.search(rf"(?m)^number = {n.number}$", text):
        return None
    if n.kind == "module":
        kind = "module"
        signature = (
            "__init__(self, config: GPT2Config); forward(self, hidden_states: Tensor) -> Tensor"
        )
    else:
        kind, signature = "value", "(x: float) -> float"
    entry = (
        f'\n[[step]]\nnumber = {n.number}\ntitle = {n.title_literal}\nkind = "{kind}"\n'
        f"you_write = {json.dumps(n.title.lower(), ensure_ascii=False)}\n"
        f'[[step.public]]\nname = "{n.public}"\nsignature = "{signature}"\n'
        'contract = "TODO(contributor): what it must do."\n'
    )
    return text.rstrip("\n") + "\n" + entry


def _with_readme_row(text: str, n: Names) -> str | None:
    """README.md with the step's row added to the table of steps (None: already there)."""
    if re.search(rf"(?m)^\| {n.nn} \|", text):
        return None
    lines = text.splitlines(keepends=True)
    last = max((i for i, ln in enumerate(lines) if re.match(r"\| \d\d \|", ln)), default=None)
    if last is None:
        return None
    lines.insert(last + 1, f"| {n.nn} | {n.title.lower()} |\n")
    return "".join(lines)


def plan(title: str, kind: str = "module", root: Path = ROOT) -> tuple[Names, dict[Path, str]]:
    """What ``new-step`` writes: {path: new content}. Raises ValueError if it cannot."""
    if kind not in ("module", "function"):
        raise ValueError("--kind is module or function")
    names = names_for(title, kind, next_number(root))
    if names.number > 99:
        raise ValueError("step numbers have two digits; there is no room for another step")
    source = _module_source if kind == "module" else _function_source
    files = {
        root / "solutions" / f"solution_{names.nn}.py": source(names, learner=False),
        root / "steps" / f"step_{names.nn}.py": source(names, learner=True),
        root / "checks" / "specs" / f"step_{names.nn}.py": (
            _module_spec(names) if kind == "module" else _function_spec(names)
        ),
        root / "book" / "src" / f"step_{names.nn}.md": _chapter(names),
    }
    for path in files:
        if path.exists():
            raise ValueError(f"{path.relative_to(root)} exists already; nothing was written")
    registrations = (
        (root / "course.toml", _with_manifest_entry),
        (root / "pixi.toml", _with_pixi_task),
        (root / "book" / "src" / "SUMMARY.md", _with_summary_entry),
        (root / "README.md", _with_readme_row),
    )
    for path, edit in registrations:
        if path.name == "README.md" and not path.exists():
            continue  # a course without a README has no table to extend
        if not path.exists():
            raise ValueError(f"{path.relative_to(root)} is missing; nothing was written")
        changed = edit(path.read_text(), names)
        if changed is not None:
            files[path] = changed
    from checks import manifest

    manifest_text = files.get(root / "course.toml")
    if manifest_text is not None:  # the book's contract page follows the manifest
        contract = manifest.contract_markdown(manifest.parse(manifest_text))
        files[root / "book" / "src" / "contract.md"] = contract
    return names, files


def main(title: str, kind: str = "module", dry_run: bool = False, root: Path = ROOT) -> int:
    from rich.markup import escape

    from checks.report import console

    if not title.strip():
        console.print(
            '[red]✗[/] Give the step a title: python -m checks new-step "Rotary embeddings"'
        )
        return 2
    try:
        names, files = plan(title, kind, root)
    except ValueError as exc:
        console.print(f"[red]✗[/] {escape(str(exc))}")
        return 2
    verb = "would write" if dry_run else "wrote"
    if not dry_run:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    console.print(
        f"[bold]Step {names.nn} · {escape(names.title)}[/]  ({names.kind} "
        f"[bold]{escape(names.public)}[/]); {verb}:"
    )
    for path in files:
        registered = ("course.toml", "pixi.toml", "SUMMARY.md", "README.md", "contract.md")
        new = "updated" if path.name in registered else "new"
        console.print(f"  {new:8} {escape(str(path.relative_to(root)))}")
    if dry_run:
        console.print("[dim]Dry run: nothing was written.[/]")
        return 0
    nn = names.nn
    for line in (
        "Next (CONTRIBUTING.md has the details):",
        f"  1. write the real reference in solutions/solution_{nn}.py, learner's parts between "
        "the markers;",
        f"  2. copy it to steps/step_{nn}.py and replace those parts with TODOs;",
        f"  3. add known mistakes to checks/specs/step_{nn}.py and write book/src/step_{nn}.md;",
        f"  4. python -m checks {nn} --file solutions/solution_{nn}.py  (must pass)",
        f"     python -m checks {nn}  (must say NOT STARTED)",
        "     python -m pytest tests/test_consistency.py tests/test_meta.py",
    ):
        console.print(escape(line))
    return 0
