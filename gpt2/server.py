"""``python -m gpt2 serve``: MAX's own server (``max serve``) on the course's GPT-2.

The server is MAX's, unchanged: its OpenAI-compatible API, scheduler and paged KV cache.
This module only starts it on the course's architecture (``gpt2.max_architecture``) and
adds two things to its request handling, in front of MAX's routes:

* MAX 26.7 answers a bad request it has diagnosed with ``400 "Value error."`` and keeps the
  diagnosis in its log (its source says the details still need work). The answer here
  carries MAX's own message instead: ``temperature must be in [0.0, 2.0], was -1.0``.
* MAX 26.7 accepts ``max_tokens: 0`` and generates a token anyway, and answers a body
  that is not JSON with "Missing JSON."; both get a precise 400 here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from gpt2 import course, max_internals, serving

COMPLETION_ROUTES = ("/v1/completions", "/v1/chat/completions")


def check_request(body: dict) -> str | None:
    """What is wrong with a completion request that MAX lets through, or None."""
    for field in ("max_tokens", "max_completion_tokens"):
        value = body.get(field)
        if value is not None and (not isinstance(value, int) or value < 1):
            return f"{field} must be a positive integer, was {value!r}."
    return None


class RequestChecks:
    """ASGI middleware: a completion request that ``check_request`` refuses gets a 400 in
    OpenAI's error format; everything else goes to MAX untouched (its body replayed)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") not in COMPLETION_ROUTES:
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        raw = b"".join(chunks)
        problem = None
        try:
            body = json.loads(raw)
        except ValueError as exc:  # MAX would say "Missing JSON."
            problem = f"The request body is not valid JSON ({exc})."
        else:
            problem = check_request(body) if isinstance(body, dict) else None
        if problem:
            return await _send_error(send, 400, problem)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _send_error(send, status: int, message: str) -> None:
    from max.serve.api_server import openai_error_body

    payload = json.dumps(openai_error_body(status, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _explained(request, exc):
    """MAX's handler for its HTTP errors, with the ValueError's own message where MAX
    answered only "Value error."."""
    from fastapi import HTTPException

    cause = exc.__cause__
    if exc.detail == "Value error." and isinstance(cause, ValueError) and str(cause):
        exc = HTTPException(status_code=exc.status_code, detail=str(cause))
    return await max_internals.openai_http_exception_handler(request, exc)


def with_checks(app):
    """MAX's FastAPI app with the course's request checks: FastAPI's own middleware and
    exception-handler hooks, the app itself untouched."""
    from fastapi import HTTPException

    app.add_exception_handler(HTTPException, _explained)
    app.add_middleware(RequestChecks)
    return app


def max_serve_arguments(
    model: str, *, device: str, port: int, host: str, name: str | None = None
) -> list[str]:
    """The ``max serve`` command line for the course's architecture; ``name``: what clients
    call the model (default: ``model`` as given)."""
    arguments = [
        "serve",
        "--model",
        model,
        "--custom-architectures",
        f"{course.ROOT}:gpt2.max_architecture",
        "--devices",
        "gpu" if device == "gpu" else "cpu",
        "--host",
        host,
        "--port",
        str(port),
    ]
    return arguments + (["--served-model-name", name] if name else [])


def serve_environment(source: str, steps: list[int]) -> dict[str, str]:
    """What the server's processes need to build the chosen model: the module of step 14
    (a module name or a file), and the learner's steps that replace the references."""
    return {
        serving.SOURCE_VARIABLE: source,
        serving.STEPS_VARIABLE: ",".join(str(n) for n in steps),
        "MAX_SERVE_DISABLE_TELEMETRY": "1",  # nothing leaves the machine
    }


def run_max_serve(arguments: list[str]) -> int:
    """Run ``max serve`` in this process, with the request checks above."""
    import click

    try:
        max_internals.serve_with_app_hook(arguments, with_checks)
    except (KeyboardInterrupt, click.exceptions.Abort):
        return 0  # Ctrl-C: MAX has shut its workers down; a clean stop
    except click.exceptions.ClickException as error:
        error.show()
        return error.exit_code
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return 0


def stop_with_parent(parent: int) -> None:
    """Stop this server (SIGINT, as Ctrl-C) when process ``parent`` is gone: a check that
    was killed leaves no server behind."""
    import threading

    def watch():
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(30)
                os.killpg(os.getpgid(0), signal.SIGKILL)
                return
            except PermissionError:
                continue

    threading.Thread(target=watch, daemon=True, name="stop-with-parent").start()


if __name__ == "__main__":  # python -m gpt2.server <max serve arguments>
    os.environ.setdefault("MAX_SERVE_DISABLE_TELEMETRY", "1")
    if os.environ.get("GPT2_SERVE_PARENT"):
        stop_with_parent(int(os.environ["GPT2_SERVE_PARENT"]))
    sys.exit(run_max_serve(sys.argv[1:]))


# --------------------------------------------------------------------------- a server to use


class ServerError(RuntimeError):
    """The server did not come up (its log's last lines say why) or did not stop."""


class RunningServer:
    """``with RunningServer(model) as server:`` a ``max serve`` process on the course's
    GPT-2, listening on ``server.base_url`` (loopback) until the block ends; then stopped
    with SIGINT, as a user's Ctrl-C would, and killed if it does not stop in time.

    Used by step 14's check, the tests and the load benchmark. ``source`` and ``steps``:
    see ``serve_environment``. ``log``: where the server's output goes (a file).
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        log: os.PathLike,
        source: str = "solutions.solution_14",
        steps: tuple[int, ...] = (),
        port: int | None = None,
        device: str = "cpu",
        max_batch_size: int | None = None,
        startup_timeout: float = 900.0,
        extra_env: dict[str, str] | None = None,
    ):
        self.model = str(model)
        self.log = Path(log)
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.startup_timeout = startup_timeout
        arguments = max_serve_arguments(self.model, device=device, port=self.port, host="127.0.0.1")
        if max_batch_size:
            arguments += ["--max-batch-size", str(max_batch_size)]
        self.command = [sys.executable, "-m", "gpt2.server", *arguments]
        self.env = {
            **os.environ,
            **serve_environment(source, list(steps)),
            "MAX_SERVE_METRICS_ENDPOINT_PORT": str(free_port()),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(course.ROOT), os.environ.get("PYTHONPATH")])
            ),
            **(extra_env or {}),
        }
        if Path(self.model).is_dir():
            self.env["HF_HUB_OFFLINE"] = "1"  # a local checkpoint: never ask the hub
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RunningServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=course.ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as a whole
            )

    def wait_ready(self) -> None:
        """Until ``/health`` answers and the model is listed, or the server dies or times out."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"the server exited with status {self.process.returncode}:\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.5)
        raise ServerError(
            f"the server was not ready in {self.startup_timeout:.0f} s:\n{self.log_tail()}"
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as response:
                return response.status == 200 and self.model in response.read().decode()
        except OSError:
            return False

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGINT to the server's process group; SIGKILL to what is left after ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(group, signal.SIGKILL)  # workers that outlived their parent, if any
        except ProcessLookupError:
            pass
        self.process.wait()
        return self.process.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
