"""Everything the checker needs from MAX, in one place.

* ``quiet_max()`` applies the measured work-arounds (Python 3.11/3.12 eager slowness,
  MAX's log noise) once, before MAX is used.
* ``pick_device()`` turns ``--device cpu|gpu|auto`` into a MAX device.
* ``building()`` is the context every module is built in: lazily, on that device, in float32.
* ``compile_module()`` compiles through MAX's graph compiler and keeps the compiled artifact
  (a MEF file) keyed by the graph's text, so an unchanged module is not compiled twice, not
  even by two processes at once (the second waits for the first: see ``file_lock``).
* ``watch_compiles()`` makes every compile MAX does in this process announce itself to
  ``on_compile`` listeners: the checker stops the learner's clock and tells the learner.
* ``InterpretFirst`` runs eager code on MAX's eager interpreter (kernels compiled once per
  machine), compiling a graph only for what the interpreter cannot run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from checks import paths

ROOT = paths.ROOT


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


_QUIET = False


def quiet_max() -> None:
    """Install MAX work-arounds once per process (see the pitfalls in the curriculum)."""
    global _QUIET
    if _QUIET:
        return
    _QUIET = True
    # Python 3.11/3.12: with the default SIGINT handler every eager op repr()s its result,
    # making eager code ~100x slower. A plain handler of our own avoids it.
    if sys.version_info < (3, 13) and _in_main_thread():
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    for name in ("max", "max.engine", "max.experimental", "max.graph", "max._eager_policy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TQDM_DISABLE", "1")
    watch_compiles()
    interpret_eager_code()
    from checks import eager_kernels

    eager_kernels.install()


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class DeviceUnavailable(Exception):
    """``--device gpu`` was asked for but MAX sees no accelerator."""


@dataclass(frozen=True)
class Target:
    """Where a check runs: the MAX device, its short name, and the dtype used."""

    device: Any
    name: str  # "cpu" or "gpu"
    dtype: Any  # max.dtype.DType

    @property
    def label(self) -> str:
        return f"{self.name}, {str(self.dtype).split('.')[-1]}"


def gpu_count() -> int:
    from max.driver import accelerator_count

    try:
        return accelerator_count()
    except Exception:  # a broken driver counts as no GPU
        return 0


def pick_device(kind: str = "auto") -> Target:
    """``cpu``, ``gpu`` or ``auto`` (the GPU when MAX sees one, else the CPU)."""
    quiet_max()
    from max.driver import CPU, Accelerator
    from max.dtype import DType

    if kind not in ("cpu", "gpu", "auto"):
        raise ValueError(f"unknown device {kind!r}: use cpu, gpu or auto")
    if kind == "auto":
        kind = "gpu" if gpu_count() > 0 else "cpu"
    if kind == "gpu":
        if gpu_count() == 0:
            raise DeviceUnavailable("MAX sees no GPU on this machine. Use --device cpu (or auto).")
        # Checks compare in float32 everywhere: MAX's GPU default (bfloat16) would hide
        # real mistakes behind rounding error.
        return Target(Accelerator(), "gpu", DType.float32)
    return Target(CPU(), "cpu", DType.float32)


@contextlib.contextmanager
def building(target: Target, lazy: bool = True):
    """Build modules on ``target`` in its dtype; lazily, so no random init is paid for."""
    from max.experimental import functional as F
    from max.experimental.tensor import default_device, default_dtype

    with default_device(target.device), default_dtype(target.dtype):
        if lazy:
            with F.lazy():
                yield
        else:
            yield


_KERNEL_PATHS = re.compile(r"_kernel_library_paths = \[[^\]]*\]")


def _max_version() -> str:
    try:
        from importlib.metadata import version

        return version("max")
    except Exception:
        return "unknown"


def _caching_session_class():
    from max.engine import InferenceSession

    class CachingSession(InferenceSession):
        """An InferenceSession that keeps each compiled graph on disk, keyed by its text.

        The graph text names weights but holds no values, so new weights reuse the artifact;
        any change to the traced computation gives a new key and a real compile. (MAX's own
        store of precompiled MEFs, ``InferenceSession(precompiled_mefs=...)``, finds an
        artifact by the graph's name and signature: every version of a learner's module has
        the same name and signature, and a different computation.)
        """

        hits = 0
        misses = 0

        def compile_reusing_mefs(self, model, **kwargs):
            path = mef_path(model)
            # The warm-up may be compiling this very graph: wait for it, then load its file.
            with compiling(), file_lock(f"mef-{path.stem}"):
                if path.exists():
                    try:
                        compiled = self.compile(path)
                        type(self).hits += 1
                        return compiled
                    except Exception:
                        path.unlink(missing_ok=True)
                type(self).misses += 1
                compiled = self.compile(model, **kwargs)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(f".{os.getpid()}.tmp")
                    compiled.export_mef(str(tmp))
                    tmp.replace(path)
                except Exception:  # a read-only cache only costs speed
                    pass
                return compiled

    return CachingSession


_SESSIONS: dict[str, Any] = {}


def session_for(target: Target):
    if target.name not in _SESSIONS:
        _SESSIONS[target.name] = _caching_session_class()(devices=[target.device])
    return _SESSIONS[target.name]


def is_cached(module, input_types) -> bool:
    """Whether compiling ``module`` for ``input_types`` would reuse a stored artifact."""
    try:
        staged = module.trace(*input_types)
    except Exception:
        return False
    return is_graph_cached(staged.graph)


def mef_path(graph) -> Path:
    """Where the compiled artifact of this traced graph is kept: keyed by its text (which
    names the weights but holds no values) and MAX's version."""
    body = _KERNEL_PATHS.sub("", repr(graph))
    key = hashlib.sha256(f"{_max_version()}\n{body}".encode()).hexdigest()[:40]
    return paths.cache_dir() / "mef" / f"{key}.mef"


def is_graph_cached(graph) -> bool:
    """Whether compiling this traced graph would reuse a stored artifact."""
    return mef_path(graph).exists()


def tensor_type(target: Target, dtype, dims):
    from max.experimental.tensor import TensorType

    return TensorType(dtype, list(dims), device=target.device)


def compile_module(module, input_types, weights: dict[str, np.ndarray], target: Target):
    """Compile ``module`` with MAX's graph compiler for ``input_types``, with ``weights``."""
    return module.compile(*input_types, weights=weights, session=session_for(target))


def to_tensor(array: np.ndarray, target: Target):
    from max.experimental.tensor import Tensor

    tensor = Tensor.from_dlpack(np.ascontiguousarray(array))
    return tensor if target.name == "cpu" else tensor.to(target.device)


def to_numpy(value) -> np.ndarray:
    """A MAX tensor (or anything array-like) as a float64-safe NumPy array."""
    if hasattr(value, "to_numpy"):
        from max.driver import CPU

        if hasattr(value, "device") and not isinstance(value.device, CPU):
            value = value.to(CPU())
        return value.to_numpy()
    return np.asarray(value)


def numpy_dtype(max_dtype) -> np.dtype:
    return np.dtype(max_dtype.to_numpy())


def cache_every_compile(target: Target) -> None:
    """Let ``Module.compile`` calls that name no session use the caching session too.

    Code that compiles by itself (step 12's ``generate``, the ``gpt2`` command) passes no
    session, so MAX uses its process-wide one; pointing that at ours keeps those graphs
    across runs as well. MAX keeps it in a private variable: if that ever moves, compiles
    only get slower.
    """
    try:
        from max.driver import CPU
        from max.experimental import support

        if target.name == "cpu":
            session = session_for(target)
        else:  # like MAX's own session: the host too, for the graph's CPU-side values
            key = f"{target.name}+cpu"
            if key not in _SESSIONS:
                _SESSIONS[key] = _caching_session_class()(devices=[target.device, CPU()])
            session = _SESSIONS[key]
        support._SESSION = session
    except Exception:  # pragma: no cover - a MAX without the variable
        pass


# --------------------------------------------------------------------------- compiles, announced

_listeners: list[Callable[[bool, str], None]] = []
_depth = 0
_depth_lock = threading.Lock()


def on_compile(listener: Callable[[bool, str], None]) -> Callable[[], None]:
    """Call ``listener(True, what)`` when MAX starts compiling, ``listener(False, what)`` when
    it is done (nested compiles count once). ``what`` is "compile", or "wait" while another
    process compiles the same thing. Returns a function that removes the listener."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


@contextlib.contextmanager
def compiling(what: str = "compile") -> Iterator[None]:
    """A stretch in which MAX compiles (or waits for another process to)."""
    global _depth
    with _depth_lock:
        _depth += 1
        first = _depth == 1
    if first:
        for listener in list(_listeners):
            listener(True, what)
    try:
        yield
    finally:
        with _depth_lock:
            _depth -= 1
            last = _depth == 0
        if last:
            for listener in list(_listeners):
                listener(False, what)


def watch_compiles() -> None:
    """Make every compile MAX does in this process announce itself (see ``on_compile``).

    Every compile in MAX 26.7 goes through ``InferenceSession.compile``: a graph compiled by
    ``Module.compile``, an eager op's kernel compiled on first use, a MEF loaded from disk.
    Wrapping that one method covers them all; two processes compiling the same module take
    turns (``file_lock``), so the second finds MAX's own on-disk cache filled by the first.
    """
    from max.engine import InferenceSession

    original = InferenceSession.compile
    if getattr(original, "_announced", False):
        return

    @functools.wraps(original)
    def compile(self, model, **kwargs):
        key = module_key(model)
        with compiling():
            if key is None:
                return original(self, model, **kwargs)
            with file_lock(f"compile-{key}"):
                return original(self, model, **kwargs)

    compile._announced = True
    InferenceSession.compile = compile


def module_key(model) -> str | None:
    """A key for what ``InferenceSession.compile`` is given (None: a file, nothing to share)."""
    if isinstance(model, (str, Path)):
        return None
    try:
        module = getattr(model, "module", model)
        data = module.mlir_module.bytecode
    except Exception:  # another MAX: no lock, only a chance of compiling twice
        return None
    return hashlib.sha256(data).hexdigest()[:32]


def file_lock(name: str):
    """An exclusive lock shared by every process of this course (the checks, the warm-up).

    Taking it may wait while another process compiles the same thing: that wait is announced
    as a compile ("wait"), so the learner's clock stands still meanwhile.
    """
    from checks import locks

    return locks.lock(name, on_wait=lambda: compiling("wait"))


def compile_bytecode(bytecode: bytes, mef: Path, target: Target) -> None:
    """Compile a graph sent as MAX module bytecode and keep the artifact at ``mef``.

    The way MAX's own compile pool compiles a graph in another process (a module rebuilt
    from bytecode, compiled, exported as a MEF file), so that a later
    ``compile_module`` of the same graph finds the file and loads it in a second.
    """
    from max import mlir
    from max._core import Operation
    from max.graph import Module

    with file_lock(f"mef-{mef.stem}"):
        if mef.exists():
            return
        module = Module(mlir_module=Operation.from_bytecode(bytecode, mlir.Context()))
        compiled = session_for(target).compile(module)
        mef.parent.mkdir(parents=True, exist_ok=True)
        tmp = mef.with_suffix(f".{os.getpid()}.tmp")
        compiled.export_mef(str(tmp))
        tmp.replace(mef)


# --------------------------------------------------------------------------- eager code


class InterpretFirst:
    """MAX's eager interpreter, and MAX's graph compiler only for graphs it refuses.

    MAX's default eager executor interprets a graph while compiling it in background worker
    processes, for next time. On a 2-core machine those compiles take the cores the check
    needs, and a check never runs the same eager graph twice. The interpreter runs each op on
    a kernel compiled once per machine (the warm-up compiles those ahead of time).
    """

    def __init__(self) -> None:
        from max.experimental.executor import InterpreterExecutor

        self._interpreter = InterpreterExecutor(max_ops=None)
        self._compiled: dict[str, Any] = {}

    def execute(self, graph, inputs):
        from max.experimental.executor import UnsupportedGraphError

        try:
            return self._interpreter.execute(graph, inputs)
        except UnsupportedGraphError:
            pass
        key = module_key(graph) or str(id(graph))
        model = self._compiled.get(key)
        if model is None:
            from max.experimental import support

            model = self._compiled[key] = support._session().load(graph)
        return model(*inputs)


def interpret_eager_code() -> None:
    """Run eager code with ``InterpretFirst`` (once per process)."""
    try:
        from max.experimental import executor
    except ImportError:  # pragma: no cover - a MAX without executors
        return
    if not isinstance(executor.default_executor(), InterpretFirst):
        executor.set_default_executor(InterpretFirst())
