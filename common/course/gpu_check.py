"""`make gpu-check`: does every course model train and predict on this GPU, and how fast?

Each model of ``common.course.bench.BENCH_MODELS`` trains a few steps with mixed precision
(``paddle.amp``: float16 forward under ``auto_cast``, loss scaling by ``GradScaler``), checks
that its loss stayed finite, predicts, and prints images/s. On a machine without a GPU it
says so and exits cleanly: the course runs there in CPU mode.

Run: ``python -m common.course.gpu_check [--size 256] [--batch 8] [--steps 5] [--models unet ...]``.
"""
from __future__ import annotations

import argparse
import math
import sys
import time


def check_model(name, kwargs, size=256, batch=8, steps=5, amp=True, num_classes=7):
    """Train ``steps`` steps of one model (mixed precision when ``amp``), then predict.

    Args:
        name, kwargs: a ``build_model`` name and its keyword arguments.
        size, batch: the square input side and the batch size.
        steps: timed training and inference steps (after one untimed warm-up step each).
        amp: train under ``paddle.amp.auto_cast`` with a ``GradScaler``.
    Returns:
        dict(name, train_img_s, infer_img_s, loss) with the last training loss.
    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    import numpy as np
    import paddle

    from common.course.bench import training_loss
    from common.engine import optimizer_step
    from common.models import build_model

    model = build_model(name, num_classes, **kwargs)
    rng = np.random.default_rng(0)
    x = paddle.to_tensor(rng.standard_normal((batch, 3, size, size)).astype("float32"))
    y = paddle.to_tensor(rng.integers(0, num_classes, (batch, size, size)))
    loss_of = training_loss(model, y)
    opt = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
    scaler = paddle.amp.GradScaler() if amp else None

    def sync():                                 # GPU kernels run asynchronously
        if paddle.get_device().startswith("gpu"):
            paddle.device.synchronize()

    def timed(fn):
        fn()                                    # warm-up: kernel selection, allocations
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            out = fn()
        sync()
        return out, batch * steps / (time.perf_counter() - start)

    model.train()
    loss, train_rate = timed(lambda: optimizer_step(lambda: loss_of(x), opt, scaler))
    loss = float(loss)
    if not math.isfinite(loss):
        raise FloatingPointError(f"{name}: loss {loss} after {steps + 1} mixed-precision steps")
    model.eval()
    with paddle.no_grad(), paddle.amp.auto_cast(enable=amp):
        _, infer_rate = timed(lambda: model(x))
    return dict(name=name, train_img_s=train_rate, infer_img_s=infer_rate, loss=loss)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--models", nargs="*")
    args = parser.parse_args(argv)

    import common  # noqa: F401  (Paddle loads with the course's settings)
    import paddle

    from common.course.bench import BENCH_MODELS
    from common.runtime import has_gpu

    if not has_gpu():
        why = "this Paddle is the CPU build" if not paddle.device.is_compiled_with_cuda() \
            else "Paddle is built with CUDA but sees no GPU (driver? CUDA_VISIBLE_DEVICES?)"
        print(f"No GPU: {why}. Nothing to check; the course runs in CPU mode here. "
              f"(GPU install: make GPU=cu126 lab, see README.)")
        return 0
    paddle.set_device("gpu")
    print(f"Paddle {paddle.__version__} on {paddle.device.cuda.get_device_name()}, "
          f"mixed precision, batch {args.batch}, {args.size}x{args.size}")
    print("model            | train img/s | infer img/s | last loss")
    failed = []
    for name, kwargs in BENCH_MODELS:
        if args.models and name not in args.models:
            continue
        try:
            r = check_model(name, kwargs, args.size, args.batch, args.steps)
            print(f"{name:16s} | {r['train_img_s']:11.1f} | {r['infer_img_s']:11.1f} | {r['loss']:.3f}")
        except Exception as exc:  # report every model, then fail
            failed.append(name)
            print(f"{name:16s} | FAILED: {type(exc).__name__}: {exc}")
    if failed:
        print(f"{len(failed)} model(s) failed: {' '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
