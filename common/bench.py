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
    # FCN (Day 2): VGG16-BN at 1/8 of the paper's width, FC6/FC7 at 16 x width
    ("fcn32s", dict(width=8, fc_channels=128, batch_norm=True)),
    ("fcn16s", dict(width=8, fc_channels=128, batch_norm=True)),
    ("fcn8s", dict(width=8, fc_channels=128, batch_norm=True)),
    # U-Net and PSPNet (Day 3) at the CPU width
    ("unet", dict(width=16)),
    ("pspnet", dict(depth=18, width=16)),
    # DeepLab V1/V2/V3/V3+ (Day 4) at the sizes day4_deeplab trains in CPU mode
    ("deeplabv1", dict(width=8)),
    ("deeplabv2", dict(depth=18, width=8)),
    ("deeplabv3", dict(depth=18, width=8)),
    ("deeplabv3plus", dict(width=8, middle_blocks=2)),
    # bottom-up instance / panoptic (Day 6 B): the small configs of solo.small_config and
    # panoptic_deeplab.small_config at width 16, 96 px (both train through bench_loss)
    ("solo", dict(depth=18, width=16, fpn_channels=64, head_channels=64, stacked_convs=2,
                  levels=(1, 2), num_grids=(12, 8), scale_ranges=((0, 28.8), (19.2, 1e4)))),
    ("panoptic_deeplab", dict(thing_ids=(4, 5, 6), depth=18, width=16, channels=64,
                              aspp_rates=(1, 2, 3), nms_kernel=5, stuff_area=61)),
    # top-down instance / panoptic (Day 6 A): mask_rcnn.small_config(16) and
    # upsnet.small_config(16) (both train through bench_loss on synthetic scene targets)
    ("mask_rcnn", dict(thing_ids=(4, 5, 6), depth=18, width=16, fpn_channels=32, rpn_p6=False,
                       anchor_sizes=(12, 24, 48, 96), rpn_batch=64, rpn_pre_nms=(300, 200),
                       rpn_post_nms=(100, 50), roi_batch=64, fc_channels=128, mask_roi_size=7,
                       mask_channels=32, mask_convs=2, canonical_size=48, max_detections=20)),
    ("upsnet", dict(thing_ids=(4, 5, 6), stuff_ids=(0, 1, 2, 3), depth=18, width=16,
                    fpn_channels=32, rpn_p6=False, anchor_sizes=(12, 24, 48, 96), rpn_batch=64,
                    rpn_pre_nms=(300, 200), rpn_post_nms=(100, 50), roi_batch=64,
                    fc_channels=128, mask_roi_size=7, mask_channels=32, mask_convs=2,
                    canonical_size=48, max_detections=20, sem_channels=32, deformable=False)),
    # context / graph units (Day 5): the shared ContextNet at ResNet-18, width 16
    ("context_baseline", dict(depth=18, width=16)),
    ("gcu", dict(depth=18, width=16)),
    ("glore", dict(depth=18, width=16)),
    ("ginet", dict(depth=18, width=16)),
]


def _rate(fn, n_items, steps, warmup=1):
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return n_items * steps / (time.perf_counter() - start)


def bench_threads():
    """GFLOP/s of a 2048^2 matmul and U-Net (width 16) training images/s, one thread vs
    all cores, each in a fresh interpreter (Paddle fixes its thread count at import)."""
    code = r"""
import time, common, paddle
from common.models import build_model
a = paddle.randn([2048, 2048]); (a @ a).numpy()
t = time.perf_counter(); [(a @ a).numpy() for _ in range(5)]; g = 5 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9
from common.engine import make_optimizer
m = build_model('unet', 7, width=16); opt = make_optimizer('adam', 1e-3, m.parameters())
x = paddle.randn([4, 3, 96, 96]); y = paddle.randint(0, 7, [4, 96, 96])
def step():
    loss = paddle.nn.functional.cross_entropy(m(x), y, axis=1); loss.backward(); opt.step(); opt.clear_grad()
step(); step(); t = time.perf_counter(); [step() for _ in range(8)]
print(f"{g:.1f} {8 * 4 / (time.perf_counter() - t):.1f}")
"""
    rows = []
    for threads in sorted({1, os.cpu_count() or 1}):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        gflops, ips = out.stdout.split()[-2:]
        rows.append((threads, float(gflops), float(ips)))
    print("threads | matmul GFLOP/s | U-Net train img/s (4x3x96x96)")
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
        train_rate, infer_rate = _train_infer_rates(model, x, y, steps)
        print(f"{name:16s} | {_params_m(model):10.2f} | {train_rate:11.1f} | {infer_rate:11.1f}")


# Same architecture in PaddleSeg 2.8 (ResNet50_vd: ResNet-50 with a deep stem and avg-pool
# shortcuts) and ours at the papers' full size. PaddleSeg is not a course dependency;
# `make bench-paddleseg` installs it beside the venv.
PADDLESEG_PAIRS = [
    ("unet", dict(), "UNet(K)  # PaddleSeg stops at 512 channels, the paper (and ours) at 1024"),
    ("pspnet", dict(depth=50), "PSPNet(K, ResNet50_vd(output_stride=8), backbone_indices=(2, 3))"),
    ("deeplabv3", dict(depth=50, output_stride=8),
     "DeepLabV3(K, ResNet50_vd(output_stride=8, multi_grid=(1, 2, 4)), backbone_indices=(3,))"),
    ("deeplabv3plus", dict(backbone="resnet", depth=50, output_stride=8),
     "DeepLabV3P(K, ResNet50_vd(output_stride=8), backbone_indices=(0, 3))"),
    ("glore", dict(depth=50), "GloRe(K, ResNet50_vd(output_stride=8), backbone_indices=(2, 3))"),
    ("ginet", dict(depth=50), "GINet(K, ResNet50_vd(output_stride=8), backbone_indices=(0, 1, 2, 3))"),
]


def _params_m(model):
    return sum(int(p.size) for p in model.parameters()) / 1e6


def training_loss(model, labels):
    """The loss a benchmark step trains, as a function of the images: the segmentation loss
    against ``labels``, or the model's own ``bench_loss(images)`` for the instance and
    panoptic models, which train on targets rather than label maps."""
    from common.losses import SegLoss

    if hasattr(model, "bench_loss"):
        return model.bench_loss
    loss_fn = SegLoss()
    return lambda images: loss_fn(model(images), labels)


def _train_infer_rates(model, x, y, steps):
    """(train, inference) images/s; momentum SGD on the segmentation loss, or on the
    model's own ``bench_loss(x)`` for models trained on targets rather than label maps."""
    import paddle

    loss_of = training_loss(model, y)
    opt = paddle.optimizer.Momentum(0.01, parameters=model.parameters())

    def step():
        loss_of(x).backward()
        opt.step()
        opt.clear_grad()
    model.train()
    train = _rate(step, x.shape[0], steps)
    model.eval()
    with paddle.no_grad():
        infer = _rate(lambda: model(x), x.shape[0], steps)
    return train, infer


def bench_paddleseg(size, batch, steps):
    """Ours vs PaddleSeg's model of the same architecture, full size, same input."""
    import contextlib
    import io

    import paddle

    from common.models import build_model
    with contextlib.redirect_stdout(io.StringIO()):
        import paddleseg.models as PS  # noqa: F401  (used by eval below)
        from paddleseg.models.backbones import ResNet50_vd  # noqa: F401
    K = 7  # noqa: N806
    x = paddle.randn([batch, 3, size, size])
    y = paddle.randint(0, K, [batch, size, size])
    print(f"\nours vs PaddleSeg 2.8, full size, batch {batch}, {size}x{size}: img/s (params M)")
    print("model          | ours train | PS train | ours infer | PS infer | ours M | PS M")
    for name, kwargs, ctor in PADDLESEG_PAIRS:
        ours = build_model(name, K, **kwargs)
        with contextlib.redirect_stdout(io.StringIO()):
            theirs = eval("PS." + ctor.split("  #")[0])
        rows = []
        for m in (ours, theirs):
            rows.append(_train_infer_rates(m, x, y, steps) + (_params_m(m),))
        (ot, oi, op), (tt, ti, tp) = rows
        print(f"{name:14s} | {ot:10.2f} | {tt:8.2f} | {oi:10.2f} | {ti:8.2f} | {op:6.1f} | {tp:5.1f}")


def main(argv=None):
    import common  # noqa: F401  (threads before Paddle)

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--models", nargs="*", default=None)
    p.add_argument("--skip-threads", action="store_true")
    p.add_argument("--paddleseg", action="store_true",
                   help="only compare with PaddleSeg's models (needs paddleseg importable)")
    a = p.parse_args(argv)
    if a.paddleseg:
        bench_paddleseg(a.size, a.batch, a.steps)
        return
    if not a.skip_threads:
        bench_threads()
    bench_data(a.size, a.batch)
    bench_models(a.models, a.size, a.batch, a.steps)


if __name__ == "__main__":
    main()
