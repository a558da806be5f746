"""What ``course.toml`` decides elsewhere, written from it: ``python -m checks sync``.

* ``pixi.toml``: one ``sNN = "python -m checks NN"`` task per step;
* ``book/src/SUMMARY.md``: one entry per chapter, with the step's title;
* ``README.md``: the table of steps (``| NN | you write … |``);
* ``book/src/contract.md``: the public names and signatures, the whole page.

Each is rewritten in place: the lines for the steps are replaced where they stand, the rest
of the file is kept. ``tests/test_manifest.py`` fails when a file differs from what this
would write, so the manifest stays the one registry. ``python -m checks new-step`` runs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from gpt2 import course


def _per_step(text: str, pattern: str, lines: dict[int, str]) -> str:
    """``text`` with each line matching ``pattern`` (its group 1: a step's number) replaced
    by ``lines[number]`` (dropped if the manifest has no such step), and the steps that had
    no line added after the last one that had (at the end if none had)."""
    out, last, seen = [], None, set()
    for line in text.splitlines(keepends=True):
        m = re.search(pattern, line)
        if m is None:
            out.append(line)
            continue
        number = int(m.group(1))
        if number in lines:
            indent = re.match(r"\s*", line).group(0)
            out.append(indent + lines[number] + "\n")
            seen.add(number)
        last = len(out)
    if last is None:
        last = len(out)
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
    new = [lines[n] + "\n" for n in sorted(lines) if n not in seen]
    return "".join(out[:last] + new + out[last:])


def pixi(text: str, steps) -> str:
    tasks = {s.number: f's{s.tag} = "python -m checks {s.tag}"' for s in steps}
    return _per_step(text, r"^s(\d\d)\s*=", tasks)


def summary(text: str, steps) -> str:
    entries = {s.number: f"- [{s.title}](step_{s.tag}.md)" for s in steps}
    return _per_step(text, r"\(step_(\d\d)\.md\)", entries)


def readme(text: str, steps) -> str:
    rows = {s.number: f"| {s.tag} | {s.you_write} |" for s in steps}
    return _per_step(text, r"^\| (\d\d) \|", rows)


def contract(text: str, steps) -> str:
    lines = [
        "# The contract",
        "",
        "<!-- Made from course.toml by `python -m checks sync`: edit the manifest, not this page. -->",
        "",
        "Every step's file defines exactly these names, with exactly these signatures: the",
        "checks look them up in your file, later steps import them, and",
        "`python -m gpt2 --mine` builds GPT-2 from them. Parameter names follow HuggingFace's",
        "GPT-2 so that OpenAI's weights load. Everything else in a step file is yours to",
        "name as you like.",
        "",
        "| step | name | signature | what it must do |",
        "|---|---|---|---|",
    ]
    for step in steps:
        for public in step.public:
            signature = public.signature.replace("|", "\\|")
            what = public.contract.replace("|", "\\|")
            lines.append(
                f"| [{step.tag}](step_{step.tag}.md) | `{public.name}` | `{signature}` | {what} |"
            )
    return "\n".join(lines) + "\n"


FILES: dict[str, Callable[[str, tuple], str]] = {
    "pixi.toml": pixi,
    "book/src/SUMMARY.md": summary,
    "README.md": readme,
    "book/src/contract.md": contract,
}


def rendered(root: Path = course.ROOT, manifest_text: str | None = None) -> dict[Path, str]:
    """Each derived file as the manifest would have it (files that do not exist are skipped,
    except the contract page, which is all derived)."""
    steps = course.parse(manifest_text or (root / "course.toml").read_text())
    found = {}
    for name, render in FILES.items():
        path = root / name
        if path.exists() or name == "book/src/contract.md":
            found[path] = render(path.read_text() if path.exists() else "", steps)
    return found


def main(root: Path = course.ROOT) -> int:
    from checks.report import console

    changed = 0
    for path, text in rendered(root).items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            console.print(f"  updated  {path.relative_to(root)}")
            changed += 1
    console.print(f"{changed} file{'s' if changed != 1 else ''} updated from course.toml.")
    return 0
