"""`python -m checks NN | all | progress` — the learner's one command.

Exit status is 0 if and only if every requested check passed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from checks import registry, runtime

USAGE = """python -m checks STEP [--file PATH] [--device cpu|gpu|auto]
       python -m checks all | progress"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m checks",
        usage=USAGE,
        description="Check your GPT-2 steps against the reference, with numbers.",
    )
    parser.add_argument("target", help="a step (6, 06, s06), 'all' or 'progress'")
    parser.add_argument("--file", type=Path, help="check this file as if it were the step")
    parser.add_argument(
        "--device", default="auto", choices=("cpu", "gpu", "auto"),
        help="where MAX runs the check (default: the GPU when MAX sees one, else the CPU)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    sys.dont_write_bytecode = True  # never write next to the learner's files
    if str(runtime.ROOT) not in sys.path:
        sys.path.insert(0, str(runtime.ROOT))
    args = _parser().parse_args(argv)

    from checks import report

    try:
        target = runtime.pick_device(args.device)
    except runtime.DeviceUnavailable as exc:
        report.console.print(f"[red]✗[/] {exc}")
        return 2

    if args.target == "progress":
        return progress(target)
    if args.target == "all":
        if args.file:
            report.console.print("[red]✗[/] --file checks one step: python -m checks 06 --file PATH")
            return 2
        results = [check(n, None, target) for n in registry.numbers()]
        passed = sum(r.passed for r in results)
        report.console.print(f"\n{passed} passed, {len(results) - passed} failed")
        return 0 if passed == len(results) else 1

    number = registry.parse_step(args.target)
    if number is None or number not in registry.numbers():
        known = ", ".join(f"{n:02d}" for n in registry.numbers())
        report.console.print(
            f"[red]✗[/] No step {args.target!r}. Steps: {known}; or 'all', 'progress'."
        )
        return 2
    return 0 if check(number, args.file, target).passed else 1


def check(number: int, path: Path | None, target):
    from checks import engine, report

    spec = registry.spec(number)
    with report.progress(f"Step {number:02d}") as notify:
        result = engine.run(spec, path, target, notify=notify)
    report.show(result)
    _remember(number, path or engine.step_file(number), target, result)
    return result


# --------------------------------------------------------------------------- progress


def _progress_file() -> Path:
    return runtime.CACHE_DIR / "progress.json"


def _fingerprint(number: int, path: Path, target) -> str:
    """What a result depends on: the learner's file, the reference, the spec, MAX, device."""
    from checks import engine

    digest = hashlib.sha256()
    for part in (
        path,
        engine.solution_file(number),
        registry.SPECS_DIR / f"step_{number:02d}.py",
        Path(engine.__file__),
    ):
        digest.update(part.read_bytes() if part.exists() else b"<missing>")
    digest.update(f"{runtime._max_version()}|{target.name}".encode())
    return digest.hexdigest()


def _load_progress() -> dict:
    try:
        return json.loads(_progress_file().read_text())
    except (OSError, ValueError):
        return {}


def _remember(number: int, path: Path, target, result) -> None:
    from checks import engine

    if Path(path).resolve() != engine.step_file(number).resolve():
        return  # only the learner's own step files count towards progress
    state = _load_progress()
    state[f"{number:02d}"] = {
        "fingerprint": _fingerprint(number, path, target),
        "status": "not started" if result.status == "not-started" else result.status,
        "detail": result.first_failure(),
    }
    try:
        _progress_file().parent.mkdir(parents=True, exist_ok=True)
        _progress_file().write_text(json.dumps(state, indent=1))
    except OSError:
        pass


def progress(target) -> int:
    """A table of every step. Unchanged files reuse their last result instead of re-checking."""
    from checks import engine, report

    rows = []
    for number in registry.numbers():
        spec = registry.spec(number)
        path = engine.step_file(number)
        if not path.exists():
            rows.append((number, spec.title, "missing", f"{path} does not exist"))
            continue
        known = _load_progress().get(f"{number:02d}")
        if not known or known["fingerprint"] != _fingerprint(number, path, target):
            with report.progress(f"Step {number:02d}") as notify:
                result = engine.run(spec, path, target, notify=notify)
            _remember(number, path, target, result)
            known = _load_progress().get(f"{number:02d}") or {
                "status": result.status,
                "detail": result.first_failure(),
            }
        status = known["status"]
        detail = known["detail"] if status != "passed" else ""
        rows.append((number, spec.title, status, detail))
    report.show_progress(rows)
    return 0 if all(r[2] == "passed" for r in rows) else 1
