"""`make bench`: CPU threads, data speed, and train / inference throughput of every model.

Run: ``python -m common.bench [--size 96] [--batch 4] [--steps 5] [--models fcn8s unet ...]``.
Numbers are images (or scenes) per second on this machine. The trainer's data pipeline
must deliver more scenes/s than the fastest model trains, or the model starves.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

# (build_model name, kwargs at the CPU-course size). Each day appends its models.
BENCH_MODELS = [
    ("tiny", dict(width=16)),
]


def _rate(fn, n_items, steps, warmup=1):
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return n_items * steps / (time.perf_counter() - start)


def bench_threads():
    """GFLOP/s of a 2048^2 matmul and tiny-model training images/s, 1 thread vs all cores,
    each in a fresh interpreter (Paddle fixes its thread count at import)."""
    code = r"""
import time, common, paddle, numpy as np
from common.models import build_model
a = paddle.randn([2048, 2048]); (a @ a).numpy()
t = time.perf_counter(); [(a @ a).numpy() for _ in range(5)]; g = 5 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9
m = build_model('tiny', 7, width=16); opt = paddle.optimizer.Adam(parameters=m.parameters())
x = paddle.randn([8, 3, 96, 96]); y = paddle.randint(0, 7, [8, 96, 96])
def step():
    loss = paddle.nn.functional.cross_entropy(m(x), y, axis=1); loss.backward(); opt.step(); opt.clear_grad()
step(); t = time.perf_counter(); [step() for _ in range(5)]
print(f"{g:.1f} {5 * 8 / (time.perf_counter() - t):.1f}")
"""
    rows = []
    for threads in sorted({1, os.cpu_count() or 1}):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        gflops, ips = out.stdout.split()[-2:]
        rows.append((threads, float(gflops), float(ips)))
    print("threads | matmul GFLOP/s | tiny train img/s (8x3x96x96)")
    for t, g, i in rows:
        print(f"{t:7d} | {g:14.1f} | {i:8.1f}")
    if len(rows) > 1:
        print(f"speed-up with {rows[-1][0]} threads: matmul x{rows[-1][1] / rows[0][1]:.2f}, "
              f"training x{rows[-1][2] / rows[0][2]:.2f}")


def bench_data(size, batch):
    from common.data import SyntheticScenes, make_scene, train_transform

    gen = _rate(lambda: make_scene(0, size), 1, 50)
    ds = SyntheticScenes(64, size, transform=train_transform(size))
    it = iter(range(10 ** 9))
    items = _rate(lambda: ds[(next(it) % 64, 1)], 1, 100)
    print(f"data: scene generation {gen:.0f} scenes/s, dataset item with augmentation "
          f"{items:.0f} items/s ({size}x{size})")
    return items


def bench_models(names, size, batch, steps):
    import numpy as np
    import paddle

    from common.models import build_model

    print(f"\nmodel | params (M) | train img/s | infer img/s   (batch {batch}, {size}x{size})")
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype("float32"))
    y = paddle.randint(0, 7, [batch, size, size])
    for name, kwargs in BENCH_MODELS:
        if names and name not in names:
            continue
        model = build_model(name, 7, **kwargs)
        params = sum(int(np.prod(p.shape)) for p in model.parameters()) / 1e6
        opt = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
        train_rate = float("nan")
        if hasattr(model, "bench_step"):        # models trained on targets, not label maps
            step = lambda: model.bench_step(x, opt)  # noqa: E731
        else:
            from common.losses import SegLoss
            loss_fn = SegLoss()

            def step():
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                opt.clear_grad()
        model.train()
        train_rate = _rate(step, batch, steps)
        model.eval()
        with paddle.no_grad():
            infer_rate = _rate(lambda: model(x), batch, steps)
        print(f"{name:16s} | {params:10.2f} | {train_rate:11.1f} | {infer_rate:11.1f}")


def main(argv=None):
    import common  # noqa: F401  (threads before Paddle)

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--models", nargs="*", default=None)
    p.add_argument("--skip-threads", action="store_true")
    a = p.parse_args(argv)
    if not a.skip_threads:
        bench_threads()
    bench_data(a.size, a.batch)
    bench_models(a.models, a.size, a.batch, a.steps)


if __name__ == "__main__":
    main()
