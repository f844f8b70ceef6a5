"""Device, threads, seeds and the size budget of the current mode.

Modes: FAST (``SEGCOURSE_FAST=1``, used by CI: tiny sizes, seconds per notebook),
CPU (a laptop: minutes per notebook) and GPU (full sizes). ``budget()`` returns the
sizes a notebook should use, so one notebook serves all three.
"""
from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass

import numpy as np

_THREADS_WANTED = os.cpu_count() or 1


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
    """
    import paddle

    import common

    device = "gpu" if has_gpu() else "cpu"
    paddle.set_device(device)
    threads = int(os.environ["OMP_NUM_THREADS"])    # set by the user, or by `import common`
    if device == "cpu" and common.PADDLE_LOADED_SINGLE_THREADED:
        warnings.warn("Paddle was imported before `common` and runs on one CPU thread; "
                      "switching to all cores now, but importing common first is faster.")
        paddle.base.core.set_num_threads(_THREADS_WANTED)
        os.environ["OMP_NUM_THREADS"] = str(_THREADS_WANTED)
        common.PADDLE_LOADED_SINGLE_THREADED = False
        threads = _THREADS_WANTED
    seed_everything(seed)
    b = budget()
    if verbose:
        where = device.upper() if device == "gpu" else f"CPU x{threads} threads"
        print(f"Paddle {paddle.__version__} | device {where} | budget {b.mode} "
              f"(image {b.image_size}, {b.iters} iters)")
    return b
