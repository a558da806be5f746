"""Everything the checker needs from MAX, in one place.

* ``quiet_max()`` applies the measured work-arounds (Python 3.11/3.12 eager slowness,
  MAX's log noise) once, before MAX is used.
* ``pick_device()`` turns ``--device cpu|gpu|auto`` into a MAX device.
* ``building()`` is the context every module is built in: lazily, on that device, in float32.
* ``compile_module()`` compiles through MAX's graph compiler and keeps the compiled artifact
  (a MEF file) keyed by the graph's text, so an unchanged module is not compiled twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = Path(os.environ.get("GPT2_CHECKS_CACHE", ROOT / ".cache" / "checks"))


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
    for name in ("max", "max.engine", "max.experimental", "max.graph"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TQDM_DISABLE", "1")


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
            raise DeviceUnavailable(
                "MAX sees no GPU on this machine. Use --device cpu (or auto)."
            )
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
        any change to the traced computation gives a new key and a real compile.
        """

        hits = 0
        misses = 0

        def compile_reusing_mefs(self, model, **kwargs):
            body = _KERNEL_PATHS.sub("", repr(model))
            key = hashlib.sha256(f"{_max_version()}\n{body}".encode()).hexdigest()[:40]
            path = CACHE_DIR / "mef" / f"{key}.mef"
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


def is_graph_cached(graph) -> bool:
    """Whether compiling this traced graph would reuse a stored artifact."""
    body = _KERNEL_PATHS.sub("", repr(graph))
    key = hashlib.sha256(f"{_max_version()}\n{body}".encode()).hexdigest()[:40]
    return (CACHE_DIR / "mef" / f"{key}.mef").exists()


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
