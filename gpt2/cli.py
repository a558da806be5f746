"""`python -m gpt2 "prompt"` (`pixi run gpt2 "prompt"`): the course's payoff.

Loads GPT-2's weights (from the HuggingFace hub, or a local directory with ``--model``),
compiles the model of steps 01-13 with MAX and prints the continuation of the prompt token
by token. ``--mine`` builds it from your own step files wherever their check passes.

The generated text goes to stdout; progress, timings and errors go to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpt2 import course

ROOT = course.ROOT
DEFAULT_MODEL = "openai-community/gpt2"
EOS = "<|endoftext|>"


class Failure(Exception):
    """A problem to report in one friendly message, with an exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gpt2",
        description="Continue a prompt with GPT-2, run by the model you built with MAX.",
    )
    parser.add_argument("prompt", nargs="?", default="", help="the text to continue")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="PATH_OR_ID",
        help="a directory with config.json, model.safetensors and tokenizer.json, or a "
        f"HuggingFace hub id (default: {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--device",
        default="auto",
        choices=("cpu", "gpu", "auto"),
        help="where MAX runs the model (default: the GPU when MAX sees one)",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=50,
        metavar="N",
        help="how many tokens to generate (default: 50)",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.8,
        help="0 picks the likeliest token every time (greedy); higher is "
        "more adventurous (default: 0.8)",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=50,
        metavar="K",
        help="sample among the K likeliest tokens only (default: 50; 0: all)",
    )
    parser.add_argument(
        "--top-p",
        type=float,
        default=None,
        metavar="P",
        help="sample among the likeliest tokens holding probability P",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="make the sampling repeatable: the same seed, the same text",
    )
    parser.add_argument(
        "--mine", action="store_true", help="use your own steps/ files wherever their check passes"
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="generate without the KV cache of step 13 (step 12's loop)",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="generate with gpt2.fast: the KV cache's tokens, faster (step 13's chapter)",
    )
    return parser


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gpt2 serve",
        description="Serve GPT-2 with MAX's server (max serve), OpenAI-compatible, on the "
        "model of step 14.",
    )
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="PATH_OR_ID",
        help=f"a directory with config.json, model.safetensors and tokenizer files, or a "
        f"HuggingFace hub id (default: {DEFAULT_MODEL})",
    )
    parser.add_argument("--device", default="auto", choices=("cpu", "gpu", "auto"))
    parser.add_argument("--port", type=int, default=8000, help="default: 8000")
    parser.add_argument(
        "--host", default="127.0.0.1", help="default: 127.0.0.1 (this machine only)"
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=8,
        metavar="N",
        help="requests decoded together (default: 8; MAX's own default on a CPU is 1)",
    )
    parser.add_argument(
        "--mine",
        action="store_true",
        help="serve your own steps/ files wherever their check passes",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    serving = argv[:1] == ["serve"]
    args = _serve_parser().parse_args(argv[1:]) if serving else _parser().parse_args(argv)
    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        return serve(args, err) if serving else run(args, err)
    except Failure as failure:
        err.print(f"[red]✗[/] {failure}")
        return failure.status
    except KeyboardInterrupt:
        err.print("\n[dim]stopped[/]")
        return 130


def run(args, err) -> int:
    if args.max_new_tokens < 0:
        raise Failure("--max-new-tokens must be 0 or more.", 2)
    if args.temperature < 0:
        raise Failure("--temperature must be 0 (greedy) or more.", 2)
    if args.top_k < 0:
        raise Failure("--top-k must be 0 (no limit) or more.", 2)
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise Failure("--top-p must be more than 0 and at most 1.", 2)

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.fast and args.no_cache:
        raise Failure("--fast decodes with a cache: leave out --no-cache.", 2)
    target = _setup_max(args.device)
    steps = _use_steps(args.mine, target, err)

    config, model = _load(args.model, target, steps, err)
    tokenizer = _tokenizer(args.model, err)
    prompt_ids = tokenizer.encode(args.prompt).ids if args.prompt else []
    if not prompt_ids:
        prompt_ids = [tokenizer.token_to_id(EOS)]  # GPT-2's "start of a document"
    room = config.n_positions - len(prompt_ids)
    if args.max_new_tokens > room:
        raise Failure(
            f"The prompt has {len(prompt_ids)} tokens; with --max-new-tokens "
            f"{args.max_new_tokens} that exceeds the model's context of "
            f"{config.n_positions}. Use --max-new-tokens {max(room, 0)} or less.",
            2,
        )

    from gpt2 import compiled, fast

    kernels = _use_kernels(args, model, err)
    sampling = args.temperature > 0
    gen = steps["cache"] if not args.no_cache else steps["generation"]
    with err.status("Compiling the model with MAX (the first time takes a few minutes)…"):
        started = time.perf_counter()
        if args.fast:
            fast.compile_for(model, greedy=not sampling, attention=kernels.attention)
        elif args.no_cache:
            compiled.compile_model(model)
        else:
            compiled.compile_twin(model, gen.GPT2CachedLMHeadModel, prepare=kernels.prepare)
    err.print(f"[green]✓[/] compiled in {time.perf_counter() - started:.1f} s")

    sample = dict(
        temperature=args.temperature,
        top_k=(args.top_k or None) if sampling else None,
        top_p=args.top_p if sampling else None,
        seed=args.seed,
    )
    if args.fast:
        sample["attention"] = kernels.attention
    stream = fast.stream_fast if args.fast else gen.stream if args.no_cache else gen.stream_cached
    return _write(stream(model, prompt_ids, args.max_new_tokens, **sample), args, tokenizer, err)


def serve(args, err) -> int:
    """Start MAX's server on step 14's model (this process becomes the server)."""
    if args.max_batch_size < 1:
        raise Failure("--max-batch-size must be 1 or more.", 2)
    from gpt2 import server

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    target = _setup_max(args.device)
    source, steps = "solutions.solution_14", []
    if args.mine:
        numbers = [n for n in course.numbers() if n <= SERVED_STEP]
        passed = course.passing(numbers)
        steps = [n for n in passed if n != SERVED_STEP]
        if SERVED_STEP in passed:
            source = f"steps.step_{SERVED_STEP:02d}"
        yours = ", ".join(f"{n:02d}" for n in passed) or "none"
        err.print(f"[green]✓[/] your steps: {yours}")
        others = [n for n in numbers if n not in passed]
        if others:
            listed = ", ".join(f"{n:02d}" for n in others)
            err.print(f"[yellow]![/] reference for steps {listed}: not passing yet")
    model, name = args.model, args.model  # clients ask for it by the name given here
    if Path(model).expanduser().is_dir():
        model = str(Path(model).expanduser().resolve())
    elif _looks_like_path(model):
        raise Failure(f"{model} is not a directory.", 2)
    else:  # a hub id: the files through the same download as `gpt2`, then served from disk
        model, name = str(_download(args.model, SERVE_FILES, err)[0].parent), args.model
    os.environ["HF_HUB_OFFLINE"] = "1"  # everything is on disk now: MAX never asks the hub
    os.environ.update(server.serve_environment(source, steps))
    device = "gpu" if target.name != "cpu" else "cpu"
    arguments = server.max_serve_arguments(
        model, device=device, port=args.port, host=args.host, name=name
    )
    arguments += ["--max-batch-size", str(args.max_batch_size)]
    model = name or model  # what clients ask for
    err.print(
        f"[green]✓[/] starting max serve on {model} ({target.label}); when it says it is "
        f"ready, ask it at http://{args.host}:{args.port}/v1 (OpenAI's API), e.g.\n"
        f"  curl http://{args.host}:{args.port}/v1/completions -H 'content-type: "
        f'application/json\' -d \'{{"model": "{model}", "prompt": "Hello", '
        f'"max_tokens": 20}}\'\n'
        "Ctrl-C stops it. The first start compiles the model: minutes on a CPU."
    )
    return server.run_max_serve(arguments)


# What MAX's server reads from a checkpoint: the weights, the config, the tokenizer.
SERVE_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
)
# The step whose model the server runs, by the public name that does it.
SERVED = "GPT2PagedLMHeadModel"
SERVED_STEP = course.defining(SERVED).number


def _write(tokens, args, tokenizer, err) -> int:
    """Print the prompt, then each piece of text as soon as its token arrives."""
    out = sys.stdout
    out.write(args.prompt)
    out.flush()
    ids: list[int] = []
    shown = ""
    started = time.perf_counter()
    for token in tokens:
        ids.append(token)
        text = tokenizer.decode(ids)
        # A character can span two tokens (bytes of UTF-8): wait for the rest of it.
        if not text.endswith("\ufffd"):
            out.write(text[len(shown) :])
            out.flush()
            shown = text
    elapsed = time.perf_counter() - started
    out.write(tokenizer.decode(ids)[len(shown) :] + "\n")
    out.flush()
    rate = f", {len(ids) / elapsed:.1f} tokens/s" if elapsed > 0 and ids else ""
    err.print(f"[dim]{len(ids)} tokens in {elapsed:.1f} s{rate}[/]")
    return 0


# --------------------------------------------------------------------------- MAX


def _setup_max(device: str):
    """The course's MAX work-arounds, a device, and compiled graphs kept across runs."""
    from gpt2 import runtime

    had_tqdm_setting = "TQDM_DISABLE" in os.environ
    runtime.quiet_max()
    if not had_tqdm_setting:
        os.environ.pop("TQDM_DISABLE", None)  # keep the hub's download progress bars
    try:
        target = runtime.pick_device(device)
    except runtime.DeviceUnavailable as exc:
        raise Failure(str(exc), 2) from None
    return target


# --------------------------------------------------------------------------- --mine


def _use_steps(mine: bool, target, err) -> dict:
    """The modules of steps 01-13: the references, or the learner's files that pass.

    A step file imports earlier steps from ``solutions``; ``LearnerSteps`` imports a passing
    step file under its solution's name, so the later steps build on it.
    """
    if mine:
        passed, others = _passing_steps(target)
        course.LearnerSteps(passed).install()
        for number in passed:
            name = f"{number:02d}"
            try:
                importlib.import_module(f"solutions.solution_{name}")
            except Exception as exc:  # noqa: BLE001 - any error in the learner's file, said
                err.print(
                    f"[red]✗[/] steps/step_{name}.py passed its check but does not import "
                    f"now ({type(exc).__name__}: {exc}); check it again: "
                    f"`python -m checks {name}`"
                )
                raise Failure(f"steps/step_{name}.py does not import.") from None
        yours = ", ".join(f"{n:02d}" for n in passed) or "none"
        err.print(f"[green]✓[/] your steps: {yours}")
        if others:
            listed = ", ".join(f"{n:02d}" for n in sorted(others))
            err.print(
                f"[yellow]![/] reference for steps {listed}: not passing yet "
                f"(`pixi run sNN` checks step NN)"
            )
    return {
        role: importlib.import_module(f"solutions.solution_{course.defining(name).tag}")
        for role, name in ROLES.items()
    }


@dataclass
class Kernels:
    """The learner's Mojo kernels ``--mine`` runs: ``prepare`` puts step 15's GELU into a
    model (the cached twin too), ``attention`` is step 16's op for --fast's one-token graphs."""

    prepare: Callable | None = None
    attention: Callable | None = None


def _use_kernels(args, model, err) -> Kernels:
    """With ``--mine``, the learner's Mojo kernels whose check passes."""
    from max.driver import CPU

    from gpt2 import kernels

    gelu_step, attention_step = (
        course.defining(name).number for name in (kernels.GELU_OP, kernels.ATTENTION_OP)
    )
    passing = course.passing([gelu_step, attention_step]) if args.mine else []
    found = Kernels()
    try:
        if gelu_step in passing and args.fast:
            err.print(
                f"[yellow]![/] --fast builds its own graphs: MAX's GELU, not step {gelu_step}'s"
            )
        elif gelu_step in passing:
            source = course.step_file(gelu_step)
            kernels.with_gelu_kernel(model, source)
            found.prepare = lambda twin: kernels.with_gelu_kernel(twin, source)
            err.print(f"[green]✓[/] your GELU kernel (step {gelu_step}) in every MLP")
        if attention_step in passing and not args.fast:
            err.print(
                f"[yellow]![/] your attention kernel (step {attention_step}) runs in --fast's "
                "one-token decode step: add --fast to use it"
            )
        elif attention_step in passing and not isinstance(model.device, CPU):
            err.print(
                f"[yellow]![/] your attention kernel (step {attention_step}) is used with "
                "--device cpu only: its GPU version has never been run"
            )
        elif attention_step in passing:
            source = course.step_file(attention_step)
            found.attention = kernels.decode_attention(source)
            err.print(
                f"[green]✓[/] your attention kernel (step {attention_step}) in --fast's "
                "one-token decode steps"
            )
    except kernels.KernelCompileError as exc:
        raise Failure(
            f"{exc.source.relative_to(ROOT)} passed its check but does not compile now:\n"
            f"{exc.message}"
        ) from None
    return found


# What this command takes from the course's steps, by the public name that does it.
ROLES = {"loading": "load_pretrained", "generation": "generate", "cache": "generate_cached"}


def _model_steps() -> list[int]:
    """The steps GPT-2 is built from: every step up to the last one this command uses."""
    last = max(course.defining(name).number for name in ROLES.values())
    return [n for n in course.numbers() if n <= last]


def _passing_steps(target) -> tuple[list[int], list[int]]:
    """Steps whose last check passed on this very file (what `pixi run progress` shows)."""
    numbers = _model_steps()
    passed = course.passing(numbers)
    return passed, [n for n in numbers if n not in passed]


# --------------------------------------------------------------------------- weights


def _load(name_or_path: str, target, steps, err):
    loading = steps["loading"]
    directory = Path(name_or_path).expanduser()
    if not directory.is_dir():
        if _looks_like_path(name_or_path):
            raise Failure(f"{name_or_path} is not a directory.", 2)
        directory = _download(name_or_path, ("config.json", "model.safetensors"), err)[0].parent
    with err.status(f"Loading the weights of {name_or_path}…"):
        try:
            config, model = loading.load_pretrained(directory, device=target.device)
        except ValueError as exc:  # CheckpointError and friends
            raise Failure(f"{name_or_path}: {exc}") from None
    unique = {id(t): t for _, t in model.parameters}  # the tied head counts once
    params = sum(_size(t) for t in unique.values())
    size = f"{params / 1e6:.0f}M" if params >= 1e6 else f"{params:,}"
    err.print(
        f"[green]✓[/] loaded {name_or_path} ({config.n_layer} layers, "
        f"{size} parameters) on {target.label}"
    )
    return config, model


def _size(tensor) -> int:
    n = 1
    for d in tensor.shape:
        n *= int(d)
    return n


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or os.sep in text.strip("/").replace("/", "", 1)


def _download(repo_id: str, filenames, err) -> list[Path]:
    """Fetch files from the hub (or its local cache), turning every failure into a Failure."""
    import httpx
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    paths = []
    for filename in filenames:
        try:
            try:  # the local cache first: no network needed once downloaded
                paths.append(Path(hf_hub_download(repo_id, filename, local_files_only=True)))
                continue
            except LocalEntryNotFoundError:
                pass
            if not _hub_reachable():
                raise Failure(_offline_message(repo_id, filename))
            paths.append(Path(hf_hub_download(repo_id=repo_id, filename=filename)))
        except LocalEntryNotFoundError:  # offline, and not in the local cache
            raise Failure(_offline_message(repo_id, filename)) from None
        except HFValidationError:
            raise Failure(
                f"{repo_id} is neither a local directory nor a HuggingFace hub id.", 2
            ) from None
        except RepositoryNotFoundError:
            raise Failure(f"The HuggingFace hub has no model called {repo_id}.") from None
        except EntryNotFoundError:
            raise Failure(f"{repo_id} on the HuggingFace hub has no {filename}.") from None
        except (OSError, httpx.HTTPError):  # offline, proxy, DNS: all say the same to a user
            raise Failure(_offline_message(repo_id, filename)) from None
    return paths


def _hub_reachable() -> bool:
    """A quick look for the hub's host, instead of the download's minute of retries."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _offline_message(repo_id: str, filename: str) -> str:
    return (
        f"{repo_id} is not a local directory, and its {filename} cannot be downloaded from "
        "the HuggingFace hub (offline?).\n"
        "  Run once with an internet connection (the files are cached afterwards), or point "
        "--model at a local directory holding config.json, model.safetensors and "
        "tokenizer.json, for example one made elsewhere with\n"
        f"    hf download {repo_id} config.json model.safetensors tokenizer.json --local-dir gpt2-weights\n"
        '  and then: python -m gpt2 --model gpt2-weights "Hello"'
    )


# --------------------------------------------------------------------------- tokenizer


def _tokenizer(name_or_path: str, err):
    """GPT-2's byte-level BPE tokenizer: the model directory's own, else the hub's."""
    from tokenizers import Tokenizer

    local = Path(name_or_path).expanduser()
    if local.is_dir():
        if (local / "tokenizer.json").is_file():
            return Tokenizer.from_file(str(local / "tokenizer.json"))
        err.print(f"[dim]{name_or_path} has no tokenizer.json: using {DEFAULT_MODEL}'s[/]")
        name_or_path = DEFAULT_MODEL
    (path,) = _download(name_or_path, ("tokenizer.json",), err)
    return Tokenizer.from_file(str(path))
