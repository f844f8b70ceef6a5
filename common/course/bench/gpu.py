"""Does every course model train and predict on this GPU, and how fast? (``make gpu-check``)

Each model of ``BENCH_MODELS`` trains a few steps with mixed precision (``paddle.amp``:
float16 forward under ``auto_cast``, loss scaling by ``GradScaler``), checks that its loss
stayed finite, predicts, and prints images/s. On a machine without a GPU it says so and
exits cleanly: the course runs there in CPU mode.
"""
from __future__ import annotations

import math

import numpy as np
import paddle

from common import runtime
from common.models import build_model

from .steps import rate, step_fns
from .throughput import BENCH_MODELS, SCENES


def check_model(name, kwargs, size=256, batch=8, steps=5, amp=True, num_classes=SCENES.num_classes):
    """Train ``steps`` steps of one model (mixed precision when ``amp``), then predict.

    Args:
        name, kwargs: a ``build_model`` name and its keyword arguments.
        size, batch: the square input side and the batch size.
        steps: timed training and inference steps (after one untimed warm-up step each).
        amp: train under ``paddle.amp.auto_cast`` with a ``GradScaler``.
        num_classes: classes of the model.
    Returns:
        dict(name, train_img_s, infer_img_s, loss) with the last training loss.
    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    model = build_model(name, num_classes, **kwargs)
    rng = np.random.default_rng(0)
    x = paddle.to_tensor(rng.standard_normal((batch, 3, size, size)).astype("float32"))
    y = paddle.to_tensor(rng.integers(0, num_classes, (batch, size, size)))
    train, infer = step_fns(model, x, y, amp)
    train_rate, loss = rate(train, batch, steps)
    loss = float(loss)
    if not math.isfinite(loss):
        raise FloatingPointError(f"{name}: loss {loss} after {steps + 1} mixed-precision steps")
    infer_rate, _ = rate(infer, batch, steps)
    return dict(name=name, train_img_s=train_rate, infer_img_s=infer_rate, loss=loss)


def check_all(size=256, batch=8, steps=5, models=None):
    """``check_model`` on each of ``BENCH_MODELS`` (or of ``models``), one line each.

    Returns:
        the exit status: 0 when every model passed or there is no GPU, else 1.
    """
    if not runtime.has_gpu():
        why = "this Paddle is the CPU build" if not paddle.device.is_compiled_with_cuda() \
            else "Paddle is built with CUDA but sees no GPU (driver? CUDA_VISIBLE_DEVICES?)"
        print(f"No GPU: {why}. Nothing to check; the course runs in CPU mode here. "
              f"(GPU install: make GPU=cu126 lab, see README.)")
        return 0
    paddle.set_device("gpu")
    print(f"Paddle {paddle.__version__} on {paddle.device.cuda.get_device_name()}, "
          f"mixed precision, batch {batch}, {size}x{size}")
    print("model            | train img/s | infer img/s | last loss")
    failed = []
    for name, kwargs in BENCH_MODELS:
        if models and name not in models:
            continue
        try:
            r = check_model(name, kwargs, size, batch, steps)
            print(f"{name:16s} | {r['train_img_s']:11.1f} | {r['infer_img_s']:11.1f} | {r['loss']:.3f}")
        except Exception as exc:  # report every model, then fail
            failed.append(name)
            print(f"{name:16s} | FAILED: {type(exc).__name__}: {exc}")
    if failed:
        print(f"{len(failed)} model(s) failed: {' '.join(failed)}")
        return 1
    return 0
