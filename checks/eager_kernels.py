"""MAX's eager-interpreter kernels, compiled once per machine for what the course runs.

MAX's eager interpreter runs each op on a small compiled model of its op family ("binary",
"reduce_axis", "matmul", …), one per op and dtype. By default it compiles each the first
time it is used (10-20 s each on 2 cores); ``max warm-interpreter-cache`` instead compiles
every family's whole matrix, all ops in all dtypes, in one batch per family, and stamps the
machine so that a process loads a family's batch from MAX's cache at its first op. Batches
are far cheaper per op, but the whole matrix takes 15-20 minutes here, most of it for dtypes
the course never uses (float64, int8, int16, …).

So the course does what MAX's warm does, for the families and dtypes it uses: the warm-up
compiles each family's batch cut down to ``KEEP`` (``compile_family``) and marks it done in
MAX's cache folder; the checker's processes load a marked batch at the family's first op
(``install``), through MAX's own family cache, or wait for it when the warm-up is compiling
it at that moment. Otherwise (no warm-up, or not there yet) ops compile one by one as MAX
does by default: for one check, that costs less than a whole batch. An op outside a batch
(another dtype) is compiled on its own on first use. Nothing here changes MAX for other
programs: MAX's own stamp is not written.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import re
from pathlib import Path

# The families the course's code uses, roughly in the order a learner meets them: step 02's
# masks (arange, comparisons and arithmetic, broadcasts, where, band_part, reshapes), step
# 03's reductions and math functions, step 04's matmul, step 05's lookups, and casts.
FAMILIES = (
    "range",
    "data_movement",
    "binary",
    "select",
    "band_part",
    "shape_rearrange",
    "reduce_axis",
    "unary",
    "matmul",
    "gather",
    "cast",
)
# The dtypes the course computes in (float32; int64 ids; bool comparisons; int32 indices),
# and the unsigned widths MAX copies them as (a pure copy of a float32 is a uint32 copy).
KEEP = frozenset({"float32", "int64", "int32", "bool", "uint8", "uint32", "uint64"})


@functools.cache
def _dtype_pattern() -> re.Pattern:
    from max.dtype import DType

    names = sorted((d.name for d in DType), key=len, reverse=True)
    return re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, names)) + r")(?![0-9])")


def kept(graph_name: str) -> bool:
    """Whether a family's graph (named after its op and dtypes) is one the course keeps."""
    dtypes = _dtype_pattern().findall(graph_name)
    return all(d in KEEP for d in dtypes)


def _families() -> dict:
    from max._interpreter_ops import gc_compile

    return {family.name: family for family in gc_compile.registered_families()}


def subset_module(family):
    """``family``'s batch of models (MAX's sweep module) cut down to the kept dtypes.

    Built the same way in every process, byte for byte, so that its entry in MAX's cache,
    made by the warm-up, is found by the checks.
    """
    from max import mlir
    from max._core import Operation
    from max.graph import Module

    full = family.build_sweep_module()
    context = mlir.Context()
    context.allow_unregistered_dialects = True
    # Without threads of its own: an MLIR context with a thread pool must not be destroyed
    # by one of those threads, and Python's garbage collector may run in any thread.
    context.enable_multithreading(False)
    parsed = mlir.Module.parse(full.mlir_module.bytecode, context)
    ops, op = list(parsed.body.operations), None
    for op in ops:
        name = str(op.operation.attributes["sym_name"]).strip('"')
        if not kept(name):
            op.operation.erase()
    data = io.BytesIO()
    parsed.operation.write_bytecode(data)
    del ops, op, parsed, context  # destroyed here, in this thread
    gc.collect()
    return Module(mlir_module=Operation.from_bytecode(data.getvalue(), mlir.Context()))


@functools.cache
def _subset_and_key(name: str):
    from checks import runtime

    module = subset_module(_families()[name])
    return module, runtime.module_key(module)


def _marker(name: str) -> Path | None:
    """The file that says ``name``'s batch is in MAX's cache (it lives in that cache)."""
    from max._interpreter_ops import gc_compile

    folder = gc_compile._cache_dir()
    return None if folder is None else Path(folder) / f"gpt2-course-eager-{name}.json"


def _session(family):
    from max import engine

    # As MAX's own warm workers: a session over exactly the family's devices, in order (the
    # session's devices are part of the cache key).
    return engine.InferenceSession(devices=family.sweep_devices())


def compile_family(name: str) -> None:
    """Compile ``name``'s cut-down batch into MAX's cache and mark it (the warm-up's task)."""
    family = _families().get(name)
    marker = _marker(name)
    if family is None or not family.sweep_devices() or (marker and marker.exists()):
        return
    module, key = _subset_and_key(name)
    _session(family).compile(module)
    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"module": key}))


def _ready(name: str) -> bool:
    """Whether loading ``name``'s batch now costs no compile of ours: it is marked done, or
    the warm-up is compiling it at this moment (then the load waits for it)."""
    from checks import locks

    marker = _marker(name)
    _module, key = _subset_and_key(name)
    if marker is not None and marker.exists():
        try:
            return json.loads(marker.read_text()).get("module") == key
        except (OSError, ValueError):
            return False
    return locks.held(f"compile-{key}")


def install() -> None:
    """Make this process load the course's batch at a family's first op (once per process)."""
    try:
        from max._interpreter_ops import gc_compile
    except ImportError:  # pragma: no cover - a MAX without the interpreter
        return
    original = gc_compile.GCOpFamily.ensure_swept
    if getattr(original, "_course", False):
        return

    def ensure_swept(self) -> None:
        if (
            self.swept
            or self.name not in FAMILIES
            or not self.sweep_devices()
            or gc_compile.warm_stamp_matches()  # MAX's own full warm is here: use it
        ):
            return original(self)
        if not _ready(self.name):
            return None  # this op alone is compiled (asked again at the family's next new op)
        self.swept = True
        try:
            module, _key = _subset_and_key(self.name)
            self.cache.update(_session(self).load_all(module, weights_registry={}))
        except Exception:  # noqa: BLE001 - a batch that cannot load: ops compile one by one
            pass
        return None

    ensure_swept._course = True
    gc_compile.GCOpFamily.ensure_swept = ensure_swept
