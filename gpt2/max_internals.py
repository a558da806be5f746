"""Every private MAX name the course touches, in one place, each with why no public API serves.

Checked on MAX 26.7 (``CHECKED_ON``). MAX releases every few weeks and may move any of these
without notice; ``tests/test_max_internals.py`` resolves every entry of ``INTERNALS`` and
fails naming the one that moved, so a new release is caught by the test suite, not by a
learner. Nothing outside this module imports a private MAX name (a leading underscore) or
replaces an attribute of MAX's.

What the course needs from MAX's insides, and why:

* ``announce_compiles``: the checker stops the learner's clock while MAX compiles. Every
  compile MAX 26.7 does (a graph, an eager op's kernel) goes through
  ``InferenceSession.compile``; MAX has no event or callback for "a compile starts", so that
  one method is wrapped (a patched attribute).
* ``load_course_batches`` / ``compile_batch``: MAX's eager interpreter compiles each op's
  kernel on its first use (10-20 s each on 2 cores). MAX's public remedy,
  ``max warm-interpreter-cache``, compiles every op family in every dtype (15-20 minutes
  here, most of it for dtypes the course never uses) and offers no way to choose. The
  course compiles each family's batch cut down to its dtypes, with MAX's own family
  objects, keeps the bytes it compiled beside MAX's cache, and lets a process load them
  at a family's first op (a patched ``GCOpFamily.ensure_swept``).
* ``serve_with_app_hook``: ``max serve`` builds its FastAPI app inside its launcher and
  exposes no hook to add middleware or an exception handler; the course wraps the
  launcher's app factory (a patched attribute) to add its request checks, and runs MAX's
  ``max`` command line in-process (``max._entrypoints``) so that the wrapper applies.
* ``openai_http_exception_handler``: MAX's own handler for its HTTP errors, reused so the
  course's clearer messages keep OpenAI's error format.
* ``select_encoding``: which weight encoding a served model runs with, resolved as MAX's
  own architectures do (the function that does it is private).
* ``graph_value``: a ``Tensor``'s graph value, what ``KVCacheParams.unflatten_kv_inputs``
  takes (MAX's own ``*_modulev3`` architectures read the same private attribute).
"""

from __future__ import annotations

import functools
import gc
import hashlib
import importlib
import io
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CHECKED_ON = "26.7"


@dataclass(frozen=True)
class Internal:
    """One private MAX name: ``module`` and ``attribute`` path, what the course does with it."""

    module: str
    attribute: str
    use: str

    @property
    def name(self) -> str:
        return f"{self.module}.{self.attribute}"


INTERNALS = (
    Internal("max.engine", "InferenceSession.compile", "wrapped: announces every compile"),
    Internal(
        "max._interpreter_ops.gc_compile",
        "registered_families",
        "the eager interpreter's op families",
    ),
    Internal(
        "max._interpreter_ops.gc_compile",
        "GCOpFamily.ensure_swept",
        "wrapped: loads the course's batch at a family's first op",
    ),
    Internal(
        "max._interpreter_ops.gc_compile",
        "GCOpFamily.build_sweep_module",
        "a family's whole batch, cut down to the course's dtypes",
    ),
    Internal("max._interpreter_ops.gc_compile", "GCOpFamily.sweep_devices", "a family's devices"),
    Internal("max._interpreter_ops.gc_compile", "_cache_dir", "where MAX keeps its models"),
    Internal(
        "max._interpreter_ops.gc_compile",
        "warm_stamp_matches",
        "whether `max warm-interpreter-cache` ran",
    ),
    Internal("max._core", "Operation.from_bytecode", "rebuilds a cut-down batch module"),
    Internal(
        "max._entrypoints.cli.serve.serve_api_and_model_worker",
        "fastapi_app",
        "wrapped: adds the course's request checks to max serve",
    ),
    Internal("max._entrypoints.pipelines", "main", "the `max` command line, run in-process"),
    Internal(
        "max.serve.api_server",
        "_openai_http_exception_handler",
        "MAX's error answers, reused with clearer messages",
    ),
    Internal(
        "max.pipelines.lib.config.model_config",
        "_select_quantization_encoding",
        "the encoding a served model runs with",
    ),
    Internal("max.experimental.tensor", "Tensor._graph_value", "a tensor's graph value"),
)


def resolve(internal: Internal):
    """The object ``internal`` names; raises ``AttributeError`` or ``ImportError`` if moved."""
    found = importlib.import_module(internal.module)
    for part in internal.attribute.split("."):
        found = getattr(found, part)
    return found


def moved() -> list[str]:
    """The entries of ``INTERNALS`` that this MAX no longer has, by name."""
    gone = []
    for internal in INTERNALS:
        try:
            resolve(internal)
        except (ImportError, AttributeError):
            gone.append(internal.name)
    return gone


# --------------------------------------------------------------------------- compiles


_listeners: list[Callable[[bool, str], None]] = []
_depth = 0
_depth_lock = threading.Lock()


def _announce(on: bool, what: str = "compile") -> None:
    global _depth
    with _depth_lock:
        _depth += 1 if on else -1
        edge = _depth == (1 if on else 0)
    if edge:  # nested compiles count once
        for listener in list(_listeners):
            listener(on, what)


def announce_compiles(listener: Callable[[bool, str], None]) -> None:
    """Call ``listener(True, what)`` when MAX starts compiling in this process and
    ``listener(False, what)`` when it is done (a graph, an eager op's kernel, a batch of
    kernels: ``what`` is "compile"; a stretch marked with ``Compiling``: its own word)."""
    from max.engine import InferenceSession

    _listeners.append(listener)
    original = InferenceSession.compile
    if getattr(original, "_course", False):
        return

    @functools.wraps(original)
    def compile(self, *args, **kwargs):
        _announce(True)
        try:
            return original(self, *args, **kwargs)
        finally:
            _announce(False)

    compile._course = True
    InferenceSession.compile = compile


class Compiling:
    """A stretch that counts as MAX compiling (``what``: "server", a server starting, mostly
    MAX compiling in its own processes): the listeners hear it as a compile."""

    def __init__(self, what: str = "compile") -> None:
        self.what = what

    def __enter__(self):
        _announce(True, self.what)
        return self

    def __exit__(self, *exc):
        _announce(False, self.what)
        return False


# --------------------------------------------------------------------------- eager kernels


@functools.cache
def _dtype_pattern():
    import re

    from max.dtype import DType

    names = sorted((d.name for d in DType), key=len, reverse=True)
    return re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, names)) + r")(?![0-9])")


def _kept(graph_name: str, dtypes: frozenset[str]) -> bool:
    return all(d in dtypes for d in _dtype_pattern().findall(graph_name))


def op_families() -> dict:
    """The eager interpreter's op families, by name ("binary", "matmul", …)."""
    from max._interpreter_ops import gc_compile

    return {family.name: family for family in gc_compile.registered_families()}


def _bytecode(family, dtypes: frozenset[str]) -> bytes:
    """``family``'s batch of kernels (MAX's sweep module) cut down to ``dtypes``, as MLIR
    bytecode."""
    from max import mlir

    full = family.build_sweep_module()
    context = mlir.Context()
    context.allow_unregistered_dialects = True
    # No threads of its own: an MLIR context with a thread pool must not be destroyed by one
    # of those threads, and Python's garbage collector may run in any thread.
    context.enable_multithreading(False)
    parsed = mlir.Module.parse(full.mlir_module.bytecode, context)
    ops, op = list(parsed.body.operations), None
    for op in ops:
        if not _kept(str(op.operation.attributes["sym_name"]).strip('"'), dtypes):
            op.operation.erase()
    data = io.BytesIO()
    parsed.operation.write_bytecode(data)
    del ops, op, parsed, context  # destroyed here, in this thread
    gc.collect()
    return data.getvalue()


def _module(bytecode: bytes):
    from max import mlir
    from max._core import Operation
    from max.graph import Module

    return Module(mlir_module=Operation.from_bytecode(bytecode, mlir.Context()))


def _stored(family, dtypes: frozenset[str]) -> Path | None:
    """Where ``family``'s batch for ``dtypes`` is kept once it is in MAX's cache (beside it;
    one file per MAX version and set of devices): the very bytes compiled, which every
    process loads, so that MAX's cache finds them and no process builds the batch again."""
    from importlib.metadata import version

    from max._interpreter_ops import gc_compile

    folder = gc_compile._cache_dir()
    if folder is None:
        return None
    devices = [str(d) for d in family.sweep_devices()]
    key = f"{version('max')} {sorted(dtypes)} {devices}"
    key = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(folder) / f"gpt2-course-eager-{family.name}-{key}.mlirbc"


def _session(family):
    from max import engine

    # As MAX's own warm: a session over exactly the family's devices, in order (they are
    # part of the cache key).
    return engine.InferenceSession(devices=family.sweep_devices())


def compile_batch(name: str, dtypes: frozenset[str]) -> None:
    """Compile family ``name``'s batch for ``dtypes`` into MAX's cache, and keep its bytes."""
    family = op_families().get(name)
    if family is None or not family.sweep_devices():
        return
    stored = _stored(family, dtypes)
    if stored is None or stored.exists():  # no cache to compile into, or done already
        return
    bytecode = _bytecode(family, dtypes)
    _session(family).compile(_module(bytecode))
    stored.parent.mkdir(parents=True, exist_ok=True)
    staged = stored.with_suffix(f".{os.getpid()}")
    staged.write_bytes(bytecode)
    staged.replace(stored)  # whole or not at all: a check may be about to read it


def load_course_batches(families: tuple[str, ...], dtypes: frozenset[str]) -> None:
    """Make this process load a compiled batch at its family's first op, instead of
    compiling that op alone; families without one compile op by op, as MAX does by default."""
    from max._interpreter_ops import gc_compile

    original = gc_compile.GCOpFamily.ensure_swept
    if getattr(original, "_course", False):
        return

    def ensure_swept(self) -> None:
        if (
            self.swept
            or self.name not in families
            or not self.sweep_devices()
            or gc_compile.warm_stamp_matches()  # MAX's own full warm is here: use it
        ):
            return original(self)
        stored = _stored(self, dtypes)
        if stored is None or not stored.exists():
            return None  # this op alone is compiled (asked again at the family's next op)
        self.swept = True
        batch = _module(stored.read_bytes())
        self.cache.update(_session(self).load_all(batch, weights_registry={}))
        return None

    ensure_swept._course = True
    gc_compile.GCOpFamily.ensure_swept = ensure_swept


# --------------------------------------------------------------------------- serving


def serve_with_app_hook(arguments: list[str], wrap_app: Callable) -> None:
    """Run ``max <arguments>`` in this process, each FastAPI app it builds passed through
    ``wrap_app(app) -> app`` first. Raises what MAX's command line raises (click's)."""
    from max._entrypoints import pipelines
    from max._entrypoints.cli.serve import serve_api_and_model_worker as launcher

    make_app = launcher.fastapi_app
    if not getattr(make_app, "_course", False):

        def fastapi_app(*args, **kwargs):
            return wrap_app(make_app(*args, **kwargs))

        fastapi_app._course = True
        launcher.fastapi_app = fastapi_app
    pipelines.main.main(args=arguments, prog_name="max", standalone_mode=False)


async def openai_http_exception_handler(request, exc):
    from max.serve import api_server

    return await api_server._openai_http_exception_handler(request, exc)


def select_encoding(model_config, default_encoding):
    from max.pipelines.lib.config.model_config import _select_quantization_encoding

    return _select_quantization_encoding(model_config, default_encoding)


def graph_value(tensor):
    return tensor._graph_value
