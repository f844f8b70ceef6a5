"""Device, threads, seeds and the size budget of the current mode.

Modes: FAST (``SEGCOURSE_FAST=1``, used by CI: tiny sizes, seconds per notebook),
CPU (a laptop: minutes per notebook) and GPU (full sizes). ``budget()`` returns the
sizes a notebook should use, so one notebook serves all three.

``prepare_process()`` is what ``import common`` does before anything imports Paddle (this
module imports no Paddle at its top): Paddle reads OMP_NUM_THREADS once, when it is first
imported, and otherwise runs its CPU kernels on a single thread.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import io
import os
import random
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from common.lang import _

_THREADS_WANTED = os.cpu_count() or 1
# Set once by prepare_process(): whether common chose MKL_DEBUG_CPU_TYPE, and whether Paddle was
# imported before common and so fixed one thread (setup() then mends it).
MKL_CPU_TYPE_SET = False
PADDLE_LOADED_SINGLE_THREADED = False


class _QuietPaddleImport(importlib.abc.MetaPathFinder):
    """Paddle's first import, wherever it happens, without the notices it prints for its
    developers (OMP_NUM_THREADS above 1, no ccache): they are not for students. It finds
    nothing itself, only wraps Paddle's own loader once, then leaves ``sys.meta_path``."""

    def find_spec(self, name, path=None, target=None):
        if name != "paddle":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module):
                with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                    warnings.filterwarnings("ignore", message="No ccache found")
                    run(module)
            spec.loader.exec_module = exec_module
        return spec


def prepare_process():
    """Ready the process for Paddle without importing it (``import common`` calls this once).

    Sets OMP_NUM_THREADS to the number of cores unless already set, so that Paddle, imported
    later, uses every core (about twice the speed on 2 cores; ``make bench`` measures it). On
    an AMD CPU with AVX2 it also sets MKL_DEBUG_CPU_TYPE=5 unless already set, so Paddle's
    bundled Intel MKL runs its AVX2 kernels, not its generic ones (one thread on a 2-core AMD
    EPYC, per CPU second: a 2048^2 matmul at 70 GFLOP/s against 18; ``cpu_info()``). Paddle's
    first import is made quiet (``_QuietPaddleImport``), and the note Paddle's BatchNorm warns
    on every training forward (about an old API change) is silenced.
    """
    global MKL_CPU_TYPE_SET, PADDLE_LOADED_SINGLE_THREADED
    # Paddle imported before us has already fixed its thread count (it writes
    # OMP_NUM_THREADS=1 when the variable is unset); setup() mends that case.
    PADDLE_LOADED_SINGLE_THREADED = ("paddle" in sys.modules and os.environ.get("OMP_NUM_THREADS", "1") == "1"
                                     and _THREADS_WANTED > 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS_WANTED))
    mkl_type = mkl_cpu_type_to_set(_cpuinfo_text(), os.environ)
    MKL_CPU_TYPE_SET = mkl_type is not None
    if MKL_CPU_TYPE_SET:
        os.environ["MKL_DEBUG_CPU_TYPE"] = mkl_type
    warnings.filterwarnings("ignore", message="When training, we now always track global mean")
    if "paddle" not in sys.modules:
        sys.meta_path.insert(0, _QuietPaddleImport())


@dataclass(frozen=True)
class Budget:
    mode: str             # 'FAST' | 'CPU' | 'GPU'
    image_size: int       # side of the square synthetic scenes used for training
    train_scenes: int     # number of training scenes
    val_scenes: int       # number of held-out scenes
    iters: int            # optimiser steps for a notebook's main training run
    batch_size: int
    width: int            # base channel width of the course's small models
    eval_every: int       # iterations between evaluations


_BUDGETS = {
    "FAST": Budget("FAST", image_size=64, train_scenes=32, val_scenes=8, iters=30,
                   batch_size=4, width=8, eval_every=30),
    "CPU": Budget("CPU", image_size=96, train_scenes=256, val_scenes=32, iters=400,
                  batch_size=8, width=16, eval_every=100),
    "GPU": Budget("GPU", image_size=256, train_scenes=2000, val_scenes=200, iters=4000,
                  batch_size=16, width=64, eval_every=500),
}


def is_fast() -> bool:
    return os.environ.get("SEGCOURSE_FAST", "0") not in ("", "0", "false", "False")


def has_gpu() -> bool:
    import paddle

    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def mode() -> str:
    if is_fast():
        return "FAST"
    return "GPU" if has_gpu() else "CPU"


def budget() -> Budget:
    """Sizes for the current mode (see the module docstring)."""
    return _BUDGETS[mode()]


def cpu_threads() -> int:
    """Threads Paddle's CPU kernels use now."""
    import paddle

    return paddle.base.core.get_num_threads() if hasattr(paddle.base.core, "get_num_threads") \
        else int(os.environ.get("OMP_NUM_THREADS", "1"))


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy's global generator and Paddle.

    Args:
        seed: the one seed for all three (same seed, same run).
    """
    import paddle

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def setup(seed: int = 0, verbose: bool = True) -> Budget:
    """Pick the device, use every CPU core, seed everything and print one line.

    Paddle reads OMP_NUM_THREADS when first imported and defaults to one thread.
    ``import common`` sets it before Paddle loads; if Paddle was imported first we
    fall back to ``set_num_threads`` (slower than the environment variable: on
    2 cores a 2048^2 matmul ran at 36 GFLOP/s against 51 with the variable).

    Args:
        seed: seed for ``random``, NumPy and Paddle (``seed_everything``).
        verbose: print the line (Paddle version, device, threads, budget).

    Returns:
        Budget: the sizes of the current mode (FAST, CPU or GPU), as ``budget()``.
    """
    global PADDLE_LOADED_SINGLE_THREADED
    import paddle

    device = "gpu" if has_gpu() else "cpu"
    paddle.set_device(device)
    threads = int(os.environ["OMP_NUM_THREADS"])    # set by the user, or by `import common`
    if device == "cpu" and PADDLE_LOADED_SINGLE_THREADED:
        warnings.warn(_("Paddle was imported before `common` and runs on one CPU thread; "
                        "switching to all cores now, but importing common first is faster."), stacklevel=2)
        paddle.base.core.set_num_threads(_THREADS_WANTED)
        os.environ["OMP_NUM_THREADS"] = str(_THREADS_WANTED)
        PADDLE_LOADED_SINGLE_THREADED = False
        threads = _THREADS_WANTED
    seed_everything(seed)
    b = budget()
    if verbose:
        where = "GPU" if device == "gpu" else _("CPU x{threads} threads").format(threads=threads)
        print(_("Paddle {version} | device {device} | budget {mode} (image {size}, {iters} iters)").format(
            version=paddle.__version__, device=where, mode=b.mode, size=b.image_size, iters=b.iters))
    return b


# --- Intel MKL on AMD processors -----------------------------------------------------------
# Paddle's CPU wheel bundles Intel MKL 2019.0.5 (libmklml_intel.so), which Paddle's matmul and
# im2col convolutions call for SGEMM. That MKL dispatches on the CPU vendor: on an AMD processor
# it runs its generic pre-AVX kernels unless MKL_DEBUG_CPU_TYPE=5 asks for the AVX2 ones
# (MKL 2020.1 dropped the variable; 2019.0.5 still reads it, at its first call).
_MKL_AVX2 = "5"
# mkl_serv_cpu_detect() codes of MKL 2019 that we name; others are printed as numbers.
_MKL_PATHS = {0: "generic (no AVX)", 4: "AVX", 5: "AVX2", 6: "AVX-512 (Xeon Phi)", 7: "AVX-512"}


def _cpuinfo_text() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:     # not Linux
        return ""


def _cpuinfo_field(text: str, key: str) -> str:
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return ""


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` ("unknown CPU" elsewhere)."""
    return _cpuinfo_field(_cpuinfo_text(), "model name") or "unknown CPU"


def mkl_cpu_type_to_set(cpuinfo: str, environ) -> str | None:
    """The MKL_DEBUG_CPU_TYPE value ``import common`` should set, or None to leave it alone.

    Only an AMD processor whose flags include AVX2 and FMA gets "5" (MKL's AVX2 kernels);
    forcing them on a CPU without those instructions would crash, and Intel CPUs get them
    anyway. A value the user has set, even an empty one, is never overridden.

    Args:
        cpuinfo: the text of /proc/cpuinfo ("" when unknown).
        environ: the environment mapping to inspect (``os.environ``).

    Returns:
        "5", or None.
    """
    if "MKL_DEBUG_CPU_TYPE" in environ:
        return None
    if _cpuinfo_field(cpuinfo, "vendor_id") != "AuthenticAMD":
        return None
    flags = set(_cpuinfo_field(cpuinfo, "flags").split())
    return _MKL_AVX2 if {"avx2", "fma"} <= flags else None


def _mkl_library():
    """ctypes handle of the MKL that Paddle loaded, or None when the wheel has none."""
    import ctypes

    import paddle

    path = os.path.join(os.path.dirname(paddle.__file__), "libs", "libmklml_intel.so")
    if not os.path.exists(path):
        return None
    try:
        return ctypes.CDLL(path)
    except OSError:
        return None


def cpu_info() -> str:
    """One line: the CPU, and which MKL kernels Paddle's CPU matmul and convolutions run.

    Returns:
        e.g. ``"AMD EPYC (AVX2) | MKL 2019.0.5, AVX2 kernels (MKL_DEBUG_CPU_TYPE=5 set by
        common) | 2 threads"``.
    """
    import ctypes

    text = _cpuinfo_text()
    flags = set(_cpuinfo_field(text, "flags").split())
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else \
        "AVX" if "avx" in flags else "no AVX"
    cpu = f"{cpu_model()} ({isa})"
    lib = _mkl_library()
    if lib is None:
        mkl = "no bundled MKL"
    else:
        buf = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buf, len(buf))
        version = buf.value.decode(errors="replace").split(" Product")[0]
        version = version.replace("Intel(R) Math Kernel Library Version ", "MKL ")
        try:    # an internal MKL entry point: the kernel family it dispatches to
            code = lib.mkl_serv_cpu_detect()
            kernels = _MKL_PATHS.get(code, f"type {code}") + " kernels"
        except AttributeError:
            kernels = "kernels unknown"
        value = os.environ.get("MKL_DEBUG_CPU_TYPE")
        who = " not set" if value is None else \
            f"={value} set by common" if MKL_CPU_TYPE_SET else f"={value!r} set by the user"
        mkl = f"{version}, {kernels} (MKL_DEBUG_CPU_TYPE{who})"
    n = cpu_threads()
    return f"{cpu} | {mkl} | {n} thread{'s' if n != 1 else ''}"
