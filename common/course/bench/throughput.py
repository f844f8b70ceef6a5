"""`make bench`: CPU threads, data speed, and train / inference throughput of every model.

Numbers are images (or scenes) per second on this machine. The trainer's data pipeline
must deliver more scenes/s than the fastest model trains, or the model starves.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import paddle

from common import runtime
from common.data import SyntheticScenes, get_variant, make_scene, train_transform
from common.models import PRESETS, build_model

from .steps import rate, step_fns

# Every model at the course's CPU size ("cpu" preset), predicting the 7 classes of the
# synthetic scenes; the dataset's facts (its thing and stuff classes, the class names whose
# word vectors GINet reads) come from the scenes, as a notebook passes them.
SCENES = get_variant("scenes")
_DATASET = dict(mask_rcnn=dict(thing_ids=SCENES.thing_ids),
                upsnet=dict(thing_ids=SCENES.thing_ids, stuff_ids=SCENES.stuff_ids),
                panoptic_deeplab=dict(thing_ids=SCENES.thing_ids), ginet=dict(classes=SCENES.classes))
BENCH_MODELS = [(name, dict(preset="cpu", **_DATASET.get(name, {}))) for name in PRESETS]


def _median_range(values):
    """'median [min-max]' of a list of numbers, for one row of the thread table."""
    v = np.asarray(values, dtype=float)
    return f"{np.median(v):7.1f} [{v.min():.1f}-{v.max():.1f}]"


def bench_threads(repeats=3):
    """GFLOP/s of a 2048^2 matmul and U-Net (width 16) training images/s: one thread, all
    cores, and (where `import common` chose MKL's AVX2 kernels for an AMD CPU) all cores on
    MKL's generic kernels. Each run is a fresh interpreter (Paddle fixes its thread count and
    MKL its kernels once per process); the configurations take turns, A B C A B C ..., so a
    busy machine slows them alike, and every ratio is taken within one round.

    Args:
        repeats: rounds of the configurations; medians and min-max over rounds are printed.
    """
    code = r"""
import time, common, paddle
from common.models import build_model
from common.engine import make_optimizer
a = paddle.randn([2048, 2048]); (a @ a).numpy()
ts = []
for _ in range(5):
    t = time.perf_counter(); (a @ a).numpy(); ts.append(time.perf_counter() - t)
g = 2 * 2048**3 / sorted(ts)[2] / 1e9
m = build_model('unet', 7, width=16); opt = make_optimizer('adam', 1e-3, m.parameters())
x = paddle.randn([4, 3, 96, 96]); y = paddle.randint(0, 7, [4, 96, 96])
def step():
    loss = paddle.nn.functional.cross_entropy(m(x), y, axis=1); loss.backward(); opt.step(); opt.clear_grad()
step(); step(); t = time.perf_counter(); [step() for _ in range(6)]
print(f"{g:.1f} {6 * 4 / (time.perf_counter() - t):.1f}")
"""
    cores = os.cpu_count() or 1
    configs = [("1 thread", dict(OMP_NUM_THREADS="1"))]
    if cores > 1:
        configs.append((f"{cores} threads", dict(OMP_NUM_THREADS=str(cores))))
    full = configs[-1][0]
    if runtime.MKL_CPU_TYPE_SET:     # "" keeps MKL's own (generic) choice on this AMD CPU
        configs.append((f"{cores} threads, generic MKL",
                        dict(OMP_NUM_THREADS=str(cores), MKL_DEBUG_CPU_TYPE="")))
    results = {label: [] for label, _ in configs}
    for _ in range(repeats):
        for label, extra in configs:
            out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **extra),
                                 capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(f"thread bench ({label}) failed:\n{out.stderr[-2000:]}")
            results[label].append([float(v) for v in out.stdout.split()[-2:]])
    print(f"threads ({repeats} interleaved rounds; median [min-max]) | matmul GFLOP/s "
          f"| U-Net train img/s (4x3x96x96)")
    for label, _ in configs:
        r = np.asarray(results[label])
        print(f"{label:28s} | {_median_range(r[:, 0])} | {_median_range(r[:, 1])}")

    def ratio(a, b, what):     # per round, so a slow round slows both sides of its ratio
        ra, rb = np.asarray(results[a]), np.asarray(results[b])
        rm, rt = ra[:, 0] / rb[:, 0], ra[:, 1] / rb[:, 1]
        print(f"  {what}: matmul x{np.median(rm):.2f} [{rm.min():.2f}-{rm.max():.2f}], "
              f"training x{np.median(rt):.2f} [{rt.min():.2f}-{rt.max():.2f}]")
    if cores > 1:
        ratio(full, configs[0][0], f"{cores} threads vs 1")
    if runtime.MKL_CPU_TYPE_SET:
        ratio(full, configs[-1][0], "MKL's AVX2 kernels vs its generic ones")


def bench_data(size, batch):
    """Scenes generated per second and dataset items (with augmentation) per second."""
    gen, _ = rate(lambda: make_scene(0, size), 1, 50)
    ds = SyntheticScenes(64, size, transform=train_transform(size))
    it = iter(range(10 ** 9))
    items, _ = rate(lambda: ds[(next(it) % 64, 1)], 1, 100)
    print(f"data: scene generation {gen:.0f} scenes/s, dataset item with augmentation "
          f"{items:.0f} items/s ({size}x{size})")
    return items


def bench_models(names, size, batch, steps):
    """Parameters, training and inference images per second of each of ``BENCH_MODELS``
    (or of ``names``) on a random batch."""
    print(f"\nmodel | params (M) | train img/s | infer img/s   (batch {batch}, {size}x{size})")
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype("float32"))
    y = paddle.randint(0, SCENES.num_classes, [batch, size, size])
    for name, kwargs in BENCH_MODELS:
        if names and name not in names:
            continue
        model = build_model(name, SCENES.num_classes, **kwargs)
        train, infer = step_fns(model, x, y)
        (train_rate, _), (infer_rate, _) = rate(train, batch, steps), rate(infer, batch, steps)
        print(f"{name:16s} | {params_m(model):10.2f} | {train_rate:11.1f} | {infer_rate:11.1f}")


def params_m(model):
    """Parameters of ``model``, in millions."""
    return sum(int(p.size) for p in model.parameters()) / 1e6
