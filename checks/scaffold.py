"""`python -m checks new-step "Title"`: the five parts of a new step, ready to fill.

It writes, with the next free number NN:

* ``solutions/solution_NN.py``: a placeholder reference that passes its own check;
* ``steps/step_NN.py``: the same file with the learner's regions replaced by TODOs;
* ``checks/specs/step_NN.py``: the check, with an empty catalogue of known mistakes;
* ``book/src/step_NN.md``: the chapter, including both files through mdBook anchors;
* the step's entry in ``course.toml``, with its public name and a placeholder hint ladder;

and then writes what the manifest decides elsewhere (``checks.derived``: the ``sNN`` task,
SUMMARY.md, README's table, the contract page). The whole default test run passes at once
(tests/test_new_step.py proves it); the contributor then replaces the placeholders with the
real step. Nothing is ever overwritten.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from gpt2 import course

ROOT = course.ROOT

START = "# ---- your code starts here ----"
END = "# ---- your code ends here ----"
_NUMBERED = re.compile(r"(?:step|solution)_(\d\d)\.(?:py|md|mojo)")


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

from checks.spec import HIDDEN_CASES, Mistake, module_step  # noqa: F401 - Mistake: see below

SPEC = module_step(
    "{n.public}",
    # Every module step checks at least two shapes, one of them with seq=1.
    cases=HIDDEN_CASES,
    # Known mistakes: each is the reference file with a few lines changed, e.g.
    #   Mistake("no-projection", "The hint the learner sees.",
    #           change={{"return self.proj(hidden_states)": "return hidden_states"}}),
    mistakes=(),
    hint="TODO(contributor): what to look at when the numbers are wrong.",
)
'''


def _function_spec(n: Names) -> str:
    return f'''"""Step {n.nn} · {n.title}."""

from checks.spec import Mistake, Spec  # noqa: F401 - Mistake: see the catalogue


def run(ns, case, ctx):
    return ns.{n.public}(case)


def compare(actual, expected, tol):
    if actual == expected and type(actual) is type(expected):
        return True, repr(actual)
    return False, f"{{actual!r}}, expected {{expected!r}}"


SPEC = Spec(
    cases=(1.0, -3.0),
    run=run,
    compare=compare,
    describe=lambda case: f"{n.public}({{case!r}})",
    # Known mistakes: Mistake("name", "hint", change={{"return 2.0 * x": "return x"}})
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
    hints = [
        f"TODO(contributor): the idea behind {n.public}, in a sentence or two.",
        f"TODO(contributor): the operations {n.public} needs, and where they live.",
        f"TODO(contributor): the shape of {n.public}'s code, without the code itself.",
    ]
    entry = (
        f'\n[[step]]\nnumber = {n.number}\ntitle = {n.title_literal}\nkind = "{kind}"\n'
        f"you_write = {json.dumps(n.title.lower(), ensure_ascii=False)}\n"
        "hints = [\n" + "".join(f"  {json.dumps(h)},\n" for h in hints) + "]\n"
        f'[[step.public]]\nname = "{n.public}"\nsignature = "{signature}"\n'
        'contract = "TODO(contributor): what it must do."\n'
    )
    return text.rstrip("\n") + "\n" + entry


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
    manifest = root / "course.toml"
    if not manifest.exists():
        raise ValueError("course.toml is missing; nothing was written")
    manifest_text = _with_manifest_entry(manifest.read_text(), names)
    if manifest_text is not None:
        files[manifest] = manifest_text
    from checks import derived

    for path, text in derived.rendered(root, manifest_text).items():
        if not path.exists() or path.read_text() != text:
            files[path] = text
    return names, files


def main(title: str, kind: str = "module", dry_run: bool = False, root: Path = ROOT) -> int:
    from rich.markup import escape

    from checks import derived
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
        registered = ("course.toml", *(Path(name).name for name in derived.FILES))
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
        "  5. replace the TODO(contributor) hints in course.toml; python -m pytest",
    ):
        console.print(escape(line))
    return 0
