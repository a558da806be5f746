"""Step 14 · Serving: MAX's server, running the learner's model, answers what generate answers.

The check starts ``max serve`` (``gpt2.server.RunningServer``, loopback only) on the tiny
GPT-2 with the learner's step 14 (every earlier step the reference), and asks it through the
``openai`` client. Before that, the learner's model is traced in this process with MAX's
serving inputs: an unfinished skeleton or a Python error is reported at once, with the
learner's line, instead of after a server start.

Cases: three prompts of different lengths sent at once (MAX batches them into one ragged
run, then decodes them together), whose greedy ids must equal the reference
``generate_cached``'s for each prompt; the same as a stream; a seed that repeats itself.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from checks.spec import Mistake, Spec
from checks.specs import generation as g
from gpt2.course import TINY_GPT2

PROMPTS = ((287, 257, 263, 89, 272, 294, 76), (5, 17), (40, 69, 76, 76, 79, 283, 79, 82, 76, 68))
NEW = 10
MODEL = str(TINY_GPT2)


@dataclass(frozen=True)
class Together:
    """All prompts sent at once, greedy: each answer's ids."""

    prompts: tuple[tuple[int, ...], ...]
    new: int

    def label(self, _function: str) -> str:
        sizes = ", ".join(str(len(p)) for p in self.prompts)
        return f"{len(self.prompts)} requests at once (prompts of {sizes}), {self.new} new, greedy"


@dataclass(frozen=True)
class Streamed:
    prompt: tuple[int, ...]
    new: int

    def label(self, _function: str) -> str:
        return f"streamed (prompt of {len(self.prompt)}, {self.new} new, greedy)"


CASES = (Together(PROMPTS, NEW), Streamed(PROMPTS[0], NEW), g.Seeded(g.SAMPLE_PROMPT, NEW))


# --------------------------------------------------------------------------- the server


def server_for(ns, ctx):
    """The server running the file ``ns`` (a step 14 module) on the check's device, started
    at the first case; ``ctx.enter`` stops it when the check ends."""
    from gpt2 import max_internals, serving
    from gpt2.server import RunningServer

    source = str(Path(ns.__file__).resolve())
    key = ("server", source)
    if key not in ctx.memo:
        # The learner's Python mistakes surface here, in this process, with their line: the
        # model traced with MAX's serving inputs (no compile) before a server starts.
        serving.trace(ns.GPT2PagedLMHeadModel, TINY_GPT2)
        server = RunningServer(
            MODEL,
            log=Path(tempfile.mkdtemp(prefix="gpt2-check-14-")) / "server.log",
            source=source,
            device=ctx.target.name,
            max_batch_size=len(PROMPTS),
            extra_env={"GPT2_SERVE_PARENT": str(os.getpid())},
        )
        # Starting it is mostly MAX compiling the model: the learner's clock stops.
        with max_internals.Compiling("server"):
            ctx.enter(key, lambda: server)
    return ctx.memo[key]


def _client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)


def served_generate(server):
    """``generate``'s signature, answered by the server."""
    client = _client(server)

    def generate(_model, prompt_ids, max_new_tokens, *, temperature=0.0, seed=None, **knobs):
        response = client.completions.create(
            model=MODEL,
            prompt=list(prompt_ids),
            max_tokens=max_new_tokens,
            temperature=temperature,
            seed=seed,
            top_p=knobs.get("top_p") or 1.0,
            extra_body={"return_token_ids": True, "ignore_eos": True},
        )
        return list(response.choices[0].model_extra.get("token_ids") or [])

    return generate


def _streamed(server, case: Streamed) -> list[int]:
    ids: list[int] = []
    stream = _client(server).completions.create(
        model=MODEL,
        prompt=list(case.prompt),
        max_tokens=case.new,
        temperature=0,
        stream=True,
        extra_body={"return_token_ids": True, "ignore_eos": True},
    )
    for chunk in stream:
        for choice in chunk.choices:
            ids += choice.model_extra.get("token_ids") or []
    return ids


def run(ns, case, ctx):
    server = server_for(ns, ctx)
    generate = served_generate(server)
    if isinstance(case, Together):
        with ThreadPoolExecutor(len(case.prompts)) as pool:
            return list(pool.map(lambda p: generate(None, p, case.new), case.prompts))
    if isinstance(case, Streamed):
        return _streamed(server, case)
    return g.run_case(generate, None, case)


def expected(case, ctx):
    """What step 13's generate_cached answers, one prompt at a time, in this process."""
    from solutions.solution_13 import generate_cached

    if isinstance(case, Together):
        return [generate_cached(ctx.model, list(p), case.new) for p in case.prompts]
    if isinstance(case, Streamed):
        return generate_cached(ctx.model, list(case.prompt), case.new)
    return case


def compare(actual, expected, tol=None):
    if isinstance(expected, list) and expected and isinstance(expected[0], list):
        for i, (mine, theirs) in enumerate(zip(actual, expected, strict=True)):
            ok, detail = g.compare(mine, theirs)
            if not ok:
                return False, f"request {i + 1}: {detail}"
        return True, "every request got generate_cached's ids"
    return g.compare(actual, expected)


# --------------------------------------------------------------------------- known mistakes


def _batch(actual, expected) -> tuple[list, list] | None:
    """Both answers as lists of requests' ids (a stream is one request), or None where they
    cannot be compared token by token."""
    if isinstance(expected, list) and expected and isinstance(expected[0], int):
        actual, expected = [actual], [expected]
    if not (isinstance(expected, list) and expected and isinstance(expected[0], list)):
        return None
    if not isinstance(actual, list) or len(actual) != len(expected):
        return None
    if not all(
        isinstance(a, list) and len(a) == len(b) for a, b in zip(actual, expected, strict=True)
    ):
        return None
    return actual, expected


def first_tokens_only(actual, expected) -> bool:
    """Every request's first token is right, and a later one is not: the prefill works,
    the decode steps (cache_lengths > 0) do not."""
    pair = _batch(actual, expected)
    if pair is None:
        return False
    mine, theirs = pair
    return all(a[0] == b[0] for a, b in zip(mine, theirs, strict=True)) and mine != theirs


def wrong_only_together(actual, expected) -> bool:
    """Wrong when sent with other requests, and (as no single-request case failed) right
    alone: something ignores where each request of a ragged batch starts. The scheduler
    picks the order of the requests in a batch, so which ones go wrong varies."""
    pair = _batch(actual, expected)
    return pair is not None and len(pair[0]) > 1


SPEC = Spec(
    cases=CASES,
    run=run,
    expected=expected,
    compare=compare,
    describe=lambda case: case.label("served"),
    mistakes=(
        Mistake(
            "positions-ignore-cache",
            "Each answer's first token is right and the later ones are not: in a decode run "
            "every request brings one new token, whose position is its text's length so far "
            "(cache_lengths[r]), not its index in the batch.",
            detect=first_tokens_only,
            change={"return index - start + past": "return index - start"},
        ),
        Mistake(
            "positions-ignore-offsets",
            "Alone, a request gets the right answer; batched with others, not: somewhere "
            "your code ignores where each request starts. The tokens of request r start at "
            "input_row_offsets[r]: a token's position within its own text is its index minus "
            "that start (plus what the cache holds), and each request's logits come from its "
            "own last row.",
            detect=wrong_only_together,
            change={"return index - start + past": "return index + past"},
        ),
    ),
    hint="To see one request at a time, send the prompts one by one (python -m gpt2 serve, "
    "then the openai client with temperature=0); compare with generate_cached. Check the "
    "positions first: print ragged_positions for input_row_offsets [0, 3, 5] and "
    "cache_lengths [0, 4]; it should be [0, 1, 2, 4, 5].",
)
