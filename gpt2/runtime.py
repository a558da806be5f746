"""Setting MAX up for the course: the measured work-arounds, a device, tensors in and out.

* ``quiet_max()`` applies the work-arounds once per process: on Python 3.11/3.12 a plain
  SIGINT handler (with the default one every eager op ``repr()``s its results through
  ``asyncio.run``, ~100× slower), and MAX's log noise down to errors.
* ``pick_device()`` turns ``--device cpu|gpu|auto`` into a ``Target``: the MAX device and
  the dtype the course computes in there (float32 everywhere).
* ``building()`` is the context modules are built in: on that device, in that dtype, lazily
  (no random initialisation is paid for: weights are loaded afterwards).

MAX keeps every graph it compiles in its own cache (``~/.cache/modular``, or
``MODULAR_CACHE_DIR``): a graph compiled once, in any process, loads in a second or two.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


_QUIET = False


def quiet_max() -> None:
    """Install the course's MAX work-arounds once per process."""
    global _QUIET
    if _QUIET:
        return
    _QUIET = True
    if sys.version_info < (3, 13) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    for name in ("max", "max.engine", "max.experimental", "max.graph", "max._eager_policy"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("TQDM_DISABLE", "1")


class DeviceUnavailable(Exception):
    """``--device gpu`` was asked for but MAX sees no accelerator."""


@dataclass(frozen=True)
class Target:
    """Where the course runs: the MAX device, its short name, and the dtype used."""

    device: Any
    name: str  # "cpu" or "gpu"
    dtype: Any  # max.dtype.DType

    @property
    def label(self) -> str:
        return f"{self.name}, {str(self.dtype).split('.')[-1]}"


def gpu_count() -> int:
    from max.driver import accelerator_count

    return accelerator_count()


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
        # float32 everywhere: MAX's GPU default (bfloat16) would hide mistakes behind rounding.
        return Target(Accelerator(), "gpu", DType.float32)
    return Target(CPU(), "cpu", DType.float32)


@contextlib.contextmanager
def building(target: Target, lazy: bool = True):
    """Build modules on ``target`` in its dtype; lazily, so no random init is paid for."""
    from max.experimental import functional as F
    from max.experimental.tensor import default_device, default_dtype

    with default_device(target.device), default_dtype(target.dtype):
        with F.lazy() if lazy else contextlib.nullcontext():
            yield


def tensor_type(target: Target, dtype, dims):
    from max.experimental.tensor import TensorType

    return TensorType(dtype, list(dims), device=target.device)


def compile_module(module, input_types, weights: dict[str, np.ndarray], target: Target):
    """``module`` compiled by MAX's graph compiler for ``input_types``, with ``weights``."""
    return module.compile(*input_types, weights=weights)


def to_tensor(array: np.ndarray, target: Target):
    from max.experimental.tensor import Tensor

    tensor = Tensor.from_dlpack(np.ascontiguousarray(array))
    return tensor if target.name == "cpu" else tensor.to(target.device)


def to_numpy(value) -> np.ndarray:
    """A MAX tensor (or anything array-like) as a NumPy array, copied to the host."""
    if hasattr(value, "to_numpy"):
        from max.driver import CPU

        if hasattr(value, "device") and not isinstance(value.device, CPU):
            value = value.to(CPU())
        return value.to_numpy()
    return np.asarray(value)


def numpy_dtype(max_dtype) -> np.dtype:
    return np.dtype(max_dtype.to_numpy())
