"""The fused one-hidden-layer trainer: a small C++ kernel (``native/fused_mlp.cpp``) built on first use.

Most sweeps are one hidden layer trained by Adam or SGD, and for them a PyTorch step is mostly overhead:
dozens of tiny kernels, each with its dispatch and its temporaries. The kernel does forward, backward and
the optimiser in one pass per step and many steps per call, on the engine's own buffers (the flat
parameters and the optimiser's moments), so checkpoints keep the general path's layout and either path
can read them.

The kernel is compiled with the system's C++ compiler into a per-user cache the first time it is needed
(a few seconds). Where that is not possible (no compiler, another OS, a CUDA device) the engine trains on
the general path; :func:`kernel_problem` says why in one line, which the runner writes to the event log.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from scaletui.config import ACTIVATIONS, Config

SOURCE = Path(__file__).with_name("native") / "fused_mlp.cpp"
# -ffast-math lets exp vectorise (glibc's libmvec) and sums reassociate; it is given to the compile step only,
# because linking a shared object with it would set flush-to-zero for the whole process (crtfastmath.o).
COMPILE_FLAGS = (
    "-O3",
    "-march=native",
    "-mprefer-vector-width=512",
    "-ffast-math",
    "-fPIC",
    "-std=c++17",
    "-fvisibility=hidden",
)
LINK_FLAGS = ("-shared", "-pthread", "-lm")
BUILD_SECONDS = 300
OPTIMIZERS = {"adam": 0, "sgd": 1}
ENTRIES = (("scaletui_train_f64", ctypes.c_double), ("scaletui_train_f32", ctypes.c_float))


class KernelUnavailable(RuntimeError):
    """The fused kernel could not be built or loaded here; the message is one line saying why."""


def fits(cfg: Config) -> bool:
    """Whether a config is the fused step's case: one hidden layer, Adam or SGD, and not turned off."""
    return cfg.execution.engine == "auto" and cfg.model.hidden_layers == 1 and cfg.training.optimizer in OPTIMIZERS


def applies(cfg: Config, device: torch.device) -> bool:
    """Whether the C++ kernel is meant to train this config: its case, on the CPU."""
    return fits(cfg) and device.type == "cpu"


def cache_dir() -> Path:
    root = os.environ.get("SCALETUI_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "scaletui"
    )
    return Path(root)


def _compiler() -> str:
    return os.environ.get("CXX") or "c++"


def _build_key(compiler: str) -> str:
    """Source, flags, compiler and CPU: -march=native code must not be reused on another kind of machine."""
    digest = hashlib.sha256(SOURCE.read_bytes())
    digest.update(" ".join((compiler, *COMPILE_FLAGS, *LINK_FLAGS, platform.machine())).encode())
    try:
        with open("/proc/cpuinfo") as fh:
            digest.update(next((line for line in fh if line.startswith("flags")), "").encode())
    except OSError:
        digest.update(platform.processor().encode())
    return digest.hexdigest()[:16]


def _build(target: Path, compiler: str) -> None:
    if sys.platform != "linux":
        raise KernelUnavailable(f"the fused kernel is built on Linux only (this is {sys.platform})")
    if shutil.which(compiler) is None:
        raise KernelUnavailable(f"no C++ compiler ({compiler!r} not found; set CXX or install g++)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        obj, lib = Path(tmp) / "fused.o", Path(tmp) / "fused.so"
        for cmd in (
            [compiler, *COMPILE_FLAGS, "-c", str(SOURCE), "-o", str(obj)],
            [compiler, str(obj), "-o", str(lib), *LINK_FLAGS],
        ):
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_SECONDS)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise KernelUnavailable(f"building the fused kernel failed ({exc})") from None
            if done.returncode != 0:
                first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip())
                raise KernelUnavailable(f"building the fused kernel failed ({first[:200]})")
        os.replace(lib, target)  # atomic: a concurrent builder or reader never sees half a library


@functools.cache
def _load() -> ctypes.CDLL | KernelUnavailable:
    compiler = _compiler()
    try:
        target = cache_dir() / f"fused_mlp-{_build_key(compiler)}.so"
        if not target.exists():
            _build(target, compiler)
        lib = ctypes.CDLL(str(target))
        entries = [(getattr(lib, name), real) for name, real in ENTRIES]
    except KernelUnavailable as exc:
        return exc
    except (OSError, AttributeError) as exc:
        return KernelUnavailable(f"the fused kernel could not be loaded ({exc})")
    for entry, real in entries:
        pointer = ctypes.POINTER(real)
        entry.restype = ctypes.c_int
        entry.argtypes = [
            pointer,  # params
            pointer,  # moment1
            pointer,  # moment2
            ctypes.POINTER(ctypes.c_int64),  # shape and strides
            pointer,  # x
            pointer,  # y
            ctypes.c_int64,  # steps
            ctypes.c_int64,  # first step
            ctypes.c_int64,  # optimiser steps before
            ctypes.POINTER(ctypes.c_double),  # learning rates
            ctypes.c_int,  # optimiser
            ctypes.c_double,  # momentum
            ctypes.c_int,  # activation
            ctypes.POINTER(ctypes.c_uint8),  # alive
            ctypes.POINTER(ctypes.c_int64),  # diverged step
            pointer,  # running loss (or NULL)
            ctypes.c_int,  # threads
        ]
    return lib


def kernel() -> ctypes.CDLL:
    """The loaded kernel, building it first if needed; raises :class:`KernelUnavailable`."""
    loaded = _load()
    if isinstance(loaded, KernelUnavailable):
        raise loaded
    return loaded


def kernel_problem() -> str | None:
    """Why the kernel cannot be used here, in one line; None when it can."""
    loaded = _load()
    return str(loaded) if isinstance(loaded, KernelUnavailable) else None


def _pointer(tensor: torch.Tensor | None, kind: type) -> ctypes._Pointer | None:
    return None if tensor is None else ctypes.cast(tensor.data_ptr(), ctypes.POINTER(kind))


def train_steps(
    params: torch.Tensor,
    moment1: torch.Tensor,
    moment2: torch.Tensor,
    shape: tuple[int, int, int, int],
    x: torch.Tensor,
    y: torch.Tensor,
    strides: tuple[int, int, int, int],
    rates: torch.Tensor,
    first_step: int,
    optimizer_steps: int,
    cfg: Config,
    alive: torch.Tensor,
    diverged: torch.Tensor,
    running: torch.Tensor | None,
    threads: int,
) -> None:
    """Train every live model of a shard for ``len(rates)`` steps, in place.

    ``shape`` is (models, input_dim, width, points per step); ``x`` and ``y`` point at the first step's data,
    ``strides`` (x per model, x per step, y per model, y per step, in elements) say where the others are.
    ``alive`` and ``diverged`` (bool and int64 per model) are updated as models diverge; ``running``, when
    given, gains each live model's loss at every step.
    """
    lib = kernel()
    real = ctypes.c_double if params.dtype == torch.float64 else ctypes.c_float
    entry = lib.scaletui_train_f64 if params.dtype == torch.float64 else lib.scaletui_train_f32
    for t in (params, moment1, moment2, alive, diverged, rates, *((running,) if running is not None else ())):
        assert t.is_contiguous() and t.device.type == "cpu"
    assert x.dtype == y.dtype == params.dtype and alive.dtype == torch.bool and diverged.dtype == torch.int64
    dims = (ctypes.c_int64 * 8)(*shape, *strides)
    status = entry(
        _pointer(params, real),
        _pointer(moment1, real),
        _pointer(moment2, real),
        dims,
        _pointer(x, real),
        _pointer(y, real),
        len(rates),
        first_step,
        optimizer_steps,
        _pointer(rates, ctypes.c_double),
        OPTIMIZERS[cfg.training.optimizer],
        cfg.training.momentum,
        ACTIVATIONS.index(cfg.model.activation),  # the kernel's enum follows config.ACTIVATIONS' order
        _pointer(alive, ctypes.c_uint8),
        _pointer(diverged, ctypes.c_int64),
        _pointer(running, real),
        threads,
    )
    if status != 0:
        raise KernelUnavailable(f"the fused kernel refused activation {cfg.model.activation!r}")
