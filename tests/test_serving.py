"""Step 14's model behind MAX's real server (``max serve``), asked with the ``openai`` client.

One server (the reference step 14 on the tiny GPT-2, CPU, loopback) serves the module: its
greedy answers must equal the course's ``generate`` ids, streamed or not, alone or with
other requests at once; a seed must repeat itself; bad requests get a 4xx with a clear
message and the server keeps serving; SIGTERM stops it and every process it started.
Starting it takes MAX's compile time: about three minutes the first time on 2 cores, under
a minute after.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from gpt2 import course

openai = pytest.importorskip("openai")

MODEL = str(course.TINY_GPT2)
PROMPTS = ([287, 257, 263, 89, 272, 294, 76], [5, 17], [40, 69, 76, 76, 79, 283, 79, 82, 76, 68])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from gpt2.server import RunningServer

    log = tmp_path_factory.mktemp("serve") / "server.log"
    with RunningServer(MODEL, log=log, max_batch_size=4) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def reference():
    """The course's generate (step 12, no cache) on the same checkpoint, in this process."""
    from solutions.solution_11 import load_pretrained
    from solutions.solution_12 import generate

    model = load_pretrained(course.TINY_GPT2)[1]
    return lambda prompt, new: generate(model, prompt, new)


def _ids(client, prompt, new, **kw):
    response = client.completions.create(
        model=MODEL,
        prompt=prompt,
        max_tokens=new,
        extra_body={"return_token_ids": True, "ignore_eos": True},
        **kw,
    )
    return response.choices[0].model_extra["token_ids"]


def test_greedy_answers_equal_generate(client, reference):
    for prompt in PROMPTS:
        assert _ids(client, prompt, 12, temperature=0) == reference(prompt, 12)


def test_a_streamed_answer_equals_generate(client, reference):
    stream = client.completions.create(
        model=MODEL,
        prompt=PROMPTS[0],
        max_tokens=12,
        temperature=0,
        stream=True,
        extra_body={"return_token_ids": True, "ignore_eos": True},
    )
    chunks = list(stream)
    ids = [t for c in chunks for ch in c.choices for t in (ch.model_extra.get("token_ids") or [])]
    assert len(chunks) > 2, "expected the answer in pieces"
    assert ids == reference(PROMPTS[0], 12)


def test_requests_at_once_get_what_they_get_alone(client, reference):
    prompts = [PROMPTS[i % 3][: 2 + i] for i in range(8)]
    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(lambda p: _ids(client, p, 10, temperature=0), prompts))
    assert together == [reference(p, 10) for p in prompts]


def test_a_seed_repeats_itself(client):
    a, b, c = (_ids(client, PROMPTS[1], 12, temperature=1.0, seed=s) for s in (7, 7, 8))
    assert a == b
    assert a != c


def test_a_prompt_in_text_is_tokenized_by_the_server(client):
    response = client.completions.create(model=MODEL, prompt="Hello", max_tokens=5, temperature=0)
    assert response.usage.completion_tokens == 5
    assert response.usage.prompt_tokens > 0


def _post(server, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{server.base_url}/completions",
        data=body,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _json(**fields) -> bytes:
    return json.dumps({"model": MODEL, "prompt": [5, 17], "max_tokens": 3, **fields}).encode()


@pytest.mark.parametrize(
    "body,words",
    [
        (_json(prompt=list(range(1, 70))), "too long"),
        (_json(max_tokens=0), "max_tokens must be a positive integer"),
        (_json(max_tokens=-4), "max_tokens must be a positive integer"),
        (_json(temperature=-1), "temperature must be in"),
        (_json(model="no-such-model"), "Unknown model 'no-such-model'"),
        (b'{"model": "x", "prompt": [1, 2', "not valid JSON"),
    ],
    ids=["prompt-too-long", "max-tokens-0", "max-tokens-negative", "temperature", "model", "json"],
)
def test_a_bad_request_gets_a_clear_4xx_and_the_server_keeps_serving(server, client, body, words):
    status, text = _post(server, body)
    assert 400 <= status < 500, (status, text)
    message = json.loads(text)["error"]["message"]
    assert words in message, message
    assert server.healthy()
    assert len(_ids(client, [5, 17], 3, temperature=0)) == 3


def test_sigterm_stops_the_server_and_every_process_it_started(server):
    # Last in this module: the fixture's server is stopped here, as a user's `kill` would.
    process = psutil.Process(server.process.pid)
    family = [process, *process.children(recursive=True)]
    assert len(family) > 1, "expected MAX's model worker beside the server"
    os.kill(server.process.pid, signal.SIGTERM)
    server.process.wait(timeout=60)
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"left running: {[p.pid for p in alive]}"


def test_gpt2_serve_answers_and_stops_on_ctrl_c(tmp_path):
    """`python -m gpt2 serve --mine` as a user runs it, with no --model: the default hub id,
    read here from a hub cache holding the tiny checkpoint (no network). It serves under the
    hub id's name, and Ctrl-C (SIGINT) stops it and every process it started, cleanly."""
    import subprocess
    import sys
    import time

    from hub_cache import fill_hub_cache, offline_env

    from gpt2.cli import DEFAULT_MODEL, SERVE_FILES
    from gpt2.server import free_port

    cache = fill_hub_cache(tmp_path / "hub", DEFAULT_MODEL, course.TINY_GPT2, SERVE_FILES)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gpt2",
                "serve",
                "--mine",
                "--device",
                "cpu",
                "--port",
                str(port),
            ],  # fmt: skip
            cwd=course.ROOT,
            env={
                **os.environ,
                **offline_env(cache),
                "MAX_SERVE_METRICS_ENDPOINT_PORT": str(free_port()),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=60
        )
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                time.sleep(1)
        assert [m.id for m in client.models.list().data] == [DEFAULT_MODEL]
        reply = client.completions.create(
            model=DEFAULT_MODEL, prompt=[5, 17], max_tokens=4, temperature=0
        )
        assert reply.usage.completion_tokens == 4
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) in (0, 130), log.read_text()[-3000:]
        gone, alive = psutil.wait_procs(family, timeout=30)
        assert not alive, f"left running: {[p.pid for p in alive]}"
        text = log.read_text()
        assert "starting max serve" in text
        assert "your steps:" in text  # --mine lists the learner's passing steps
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow  # a second server (tens of seconds once MAX has compiled the model)
def test_the_chapters_serve_command_and_client_work_as_written(tmp_path):
    """book/src/step_14.md: `python -m gpt2 serve --model checks/data/tiny-gpt2` (its pip
    form), then the chapter's client listing, book/listings/step_14_client.py, unchanged."""
    import subprocess
    import sys
    import time

    from gpt2.server import free_port

    chapter = (course.ROOT / "book" / "src" / "step_14.md").read_text()
    assert "$ pixi run serve --model checks/data/tiny-gpt2\n" in chapter
    assert "{{#include ../listings/step_14_client.py:client}}" in chapter
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gpt2", "serve", "--model", "checks/data/tiny-gpt2"],
            cwd=course.ROOT,
            env={**os.environ, "MAX_SERVE_METRICS_ENDPOINT_PORT": str(free_port())},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                urllib.request.urlopen("http://127.0.0.1:8000/v1/models", timeout=5)
                break
            except OSError:
                time.sleep(1)
        listing = course.ROOT / "book" / "listings" / "step_14_client.py"
        reply = subprocess.run(
            [sys.executable, str(listing)], capture_output=True, text=True, timeout=300
        )
        assert reply.returncode == 0, reply.stderr
        assert reply.stdout.strip(), "the client printed no text"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
