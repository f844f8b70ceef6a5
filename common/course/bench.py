"""`make bench`: CPU threads, data speed, and train / inference throughput of every model.

Run: ``python -m common.course.bench [--size 96] [--batch 4] [--steps 5] [--models fcn8s unet ...]``.
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
    # panoptic_deeplab.small_config at width 16, 96 px (both train through the presets below)
    ("solo", dict(depth=18, width=16, fpn_channels=64, head_channels=64, stacked_convs=2,
                  levels=(1, 2), num_grids=(12, 8), scale_ranges=((0, 28.8), (19.2, 1e4)))),
    ("panoptic_deeplab", dict(thing_ids=(4, 5, 6), depth=18, width=16, channels=64,
                              aspp_rates=(1, 2, 3), nms_kernel=5, stuff_area=61)),
    # top-down instance / panoptic (Day 6 A): mask_rcnn.small_config(16) and
    # upsnet.small_config(16) (both train through detector_loss on synthetic scene targets)
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


def _median_range(values):
    """'median [min-max]' of a list of numbers, for one row of the thread table."""
    import numpy as np

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
    import numpy as np

    import common

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
    if common.MKL_CPU_TYPE_SET:     # "" keeps MKL's own (generic) choice on this AMD CPU
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
    if common.MKL_CPU_TYPE_SET:
        ratio(full, configs[-1][0], "MKL's AVX2 kernels vs its generic ones")


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
# shortcuts) and ours at the papers' full size, ours built in PaddleSeg's configuration by
# named options. tests/test_paddleseg_params.py checks the parameter counts: equal, up to
# differences it accounts for exactly (ResNet-vd's deep stem: 19,360; conv biases before BN
# that ours drop as redundant; GINet's node-level graph internals). Those biases are DeepLabV3+'s
# inference lead: PaddleSeg's has 14 biased convs (ours 1), most in its stride-4 decoder, and
# with them removed it runs at 1.02x ours instead of 1.29x (256 px, batch 2, interleaved, median
# of 5). PaddleSeg's DeepLab is
# given our ASPP rates at output stride 8 (12/24/36; its default 6/12/18 is for stride 16),
# and its GINet runs without the JPU neck (19.8 M parameters, no counterpart here).
# PaddleSeg is not a course dependency; `make bench-paddleseg` installs it beside the venv.
PADDLESEG_PAIRS = [
    ("unet", dict(paddleseg=True), "UNet(K)"),
    ("pspnet", dict(depth=50, head_channels=1024),
     "PSPNet(K, ResNet50_vd(output_stride=8), backbone_indices=(2, 3))"),
    ("deeplabv3", dict(depth=50, output_stride=8),
     "DeepLabV3(K, ResNet50_vd(output_stride=8, multi_grid=(1, 2, 4)), backbone_indices=(3,), "
     "aspp_ratios=(1, 12, 24, 36))"),
    ("deeplabv3plus", dict(backbone="resnet", depth=50, output_stride=8),
     "DeepLabV3P(K, ResNet50_vd(output_stride=8), backbone_indices=(0, 3), "
     "aspp_ratios=(1, 12, 24, 36))"),
    ("glore", dict(depth=50, kernel=1, head_conv=False, num_states=128, num_nodes=64),
     "GloRe(K, ResNet50_vd(output_stride=8), backbone_indices=(2, 3))"),
    ("ginet", dict(depth=50, num_nodes=84, node_dim=256, head_conv=False),
     "GINet(K, ResNet50_vd(output_stride=8), backbone_indices=(0, 1, 2, 3), jpu=False)"),
]


def paddleseg_aux(model, on):
    """Switch the aux head of a PaddleSeg model on or off. PaddleSeg's PSPNet and GloRe
    (``head.enable_auxiliary_loss``) and GINet (``aux``) run their aux head in eval mode
    too (4-14% of their inference time); ours skip it in eval, so the bench turns theirs
    off for inference and on for training. Models without one are left alone."""
    for obj, attr in ((getattr(model, "head", None), "enable_auxiliary_loss"), (model, "aux")):
        if obj is not None and isinstance(getattr(obj, attr, None), bool):
            setattr(obj, attr, on)


def _with_aux(model, step, on):
    """``step`` run with ``model``'s PaddleSeg aux head switched ``on`` (see paddleseg_aux)."""
    def run():
        paddleseg_aux(model, on)
        step()
    return run


def build_paddleseg(ctor, num_classes):
    """PaddleSeg's model from a ``PADDLESEG_PAIRS`` constructor string (needs paddleseg
    importable), its log lines silenced."""
    import contextlib
    import io
    import logging

    with contextlib.redirect_stdout(io.StringIO()):
        import paddleseg.models as PS  # noqa: N812
        from paddleseg.models.backbones import ResNet50_vd
        logging.getLogger("paddleseg").setLevel(logging.WARNING)
        return eval(ctor, {"PS": PS, "ResNet50_vd": ResNet50_vd, "K": num_classes},
                    {"UNet": PS.UNet, "PSPNet": PS.PSPNet, "DeepLabV3": PS.DeepLabV3,
                     "DeepLabV3P": PS.DeepLabV3P, "GloRe": PS.GloRe, "GINet": PS.GINet})


def _params_m(model):
    return sum(int(p.size) for p in model.parameters()) / 1e6


# ------------------------------------------------------------------ training presets
# Instance and panoptic models train on targets, not label maps; these presets give each a
# training loss on stand-in targets of the benchmark's batch and size. Targets are built
# once per (batch, size), outside the timed steps, so the bench times the model.
def _centre_square(n, h, w):
    """(n, h, w) bool: the middle third of every image (the stand-in object)."""
    import numpy as np

    m = np.zeros((n, h, w), bool)
    m[:, h // 3:2 * h // 3, w // 3:2 * w // 3] = True
    return m


def detector_loss(model, n, size):
    """Mask R-CNN / UPSNet: the sum of the training losses on the targets (boxes, labels,
    masks, semantic, panoptic) of ``n`` synthetic instance scenes of side ``size``.

    Args:
        model: a MaskRCNN or UPSNet (train mode returns a dict of losses).
        n: batch size.
        size: (h, w) of the images.

    Returns:
        ``loss_of(images)`` -> scalar loss tensor.
    """
    import paddle

    from common.data.instances import SceneInstances, targets_to_tensors

    data = SceneInstances(n, size, seed=0)
    targets = targets_to_tensors([data[i][1] for i in range(n)])
    return lambda images: paddle.add_n(list(model(images, targets).values()))


def solo_loss(model, n, size):
    """SOLO: its training loss with one stand-in instance per image (class 0, the centre
    square). Arguments and return as ``detector_loss``."""
    import numpy as np

    masks = _centre_square(1, *size)
    targets = [dict(masks=masks, labels=np.array([0]))] * n
    return lambda images: model(images, targets)["loss"]


def panoptic_deeplab_loss(model, n, size):
    """Panoptic-DeepLab: ``PanopticDeepLabLoss`` on a stand-in panoptic map (class 1 with
    instance 1 of the last thing class on the centre square). Arguments and return as
    ``detector_loss``."""
    import numpy as np

    from common.labels import LABEL_DIVISOR
    from common.models.panoptic_deeplab import PanopticDeepLabLoss

    thing = model.thing_ids[-1] if model.thing_ids else model.num_classes - 1
    pan = np.where(_centre_square(n, *size), thing * LABEL_DIVISOR + 1, 1 * LABEL_DIVISOR)
    loss_fn = PanopticDeepLabLoss((thing,))
    return lambda images: loss_fn(model(images), pan)


def _preset(model):
    """The training-loss preset for ``model``'s class, or None (a segmentation model)."""
    from common.models.mask_rcnn import MaskRCNN          # UPSNet is a MaskRCNN
    from common.models.panoptic_deeplab import PanopticDeepLab
    from common.models.solo import SOLO

    for cls, preset in ((MaskRCNN, detector_loss), (SOLO, solo_loss),
                        (PanopticDeepLab, panoptic_deeplab_loss)):
        if isinstance(model, cls):
            return preset
    return None


def training_loss(model, labels):
    """The loss a benchmark step trains, as a function of the images: the segmentation loss
    against ``labels`` (N, H, W), or, for the instance and panoptic models, their preset
    above on stand-in targets of the images' batch and size (built on the first call for
    each shape, then reused).

    Args:
        model: any model of ``BENCH_MODELS``.
        labels: class labels (N, H, W) for segmentation models.

    Returns:
        ``loss_of(images)`` -> scalar loss tensor.
    """
    from common.losses import SegLoss

    preset = _preset(model)
    if preset is None:
        loss_fn = SegLoss()
        return lambda images: loss_fn(model(images), labels)
    cache = {}

    def loss_of(images):
        n, _, h, w = images.shape
        if (n, h, w) not in cache:
            cache[(n, h, w)] = preset(model, n, (h, w))
        return cache[(n, h, w)](images)
    return loss_of


def _train_infer_rates(model, x, y, steps):
    """(train, inference) images/s of the steps of ``_step_fns``."""
    train, infer = _step_fns(model, x, y)
    return _rate(train, x.shape[0], steps), _rate(infer, x.shape[0], steps)


def count_macs(model, x):
    """Multiply-accumulates of one forward pass of ``model`` on ``x``, counted by forward
    hooks on every convolution, transposed convolution and linear layer (``paddle.flops``
    is broken in Paddle 3.3). Runs in the model's current mode, without gradients.

    Args:
        model: a paddle.nn.Layer.
        x: its input batch.

    Returns:
        The total multiply-accumulates for the batch (an int).
    """
    import numpy as np
    import paddle
    import paddle.nn as nn

    total = [0]

    def conv(layer, inputs, out):       # every output value: in/groups x kernel MACs
        k = int(np.prod(layer.weight.shape[1:]))
        total[0] += int(np.prod(out.shape)) * k

    def deconv(layer, inputs, out):     # every input value spreads over out/groups x kernel
        k = int(np.prod(layer.weight.shape[1:]))
        total[0] += int(np.prod(inputs[0].shape)) * k

    def linear(layer, inputs, out):
        total[0] += int(np.prod(out.shape)) * layer.weight.shape[0]

    hooks = []
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, (nn.Conv1DTranspose, nn.Conv2DTranspose)):
            hooks.append(layer.register_forward_post_hook(deconv))
        elif isinstance(layer, (nn.Conv1D, nn.Conv2D)):
            hooks.append(layer.register_forward_post_hook(conv))
        elif isinstance(layer, nn.Linear):
            hooks.append(layer.register_forward_post_hook(linear))
    try:
        with paddle.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def _step_fns(model, x, y):
    """(train step, inference step) closures: momentum SGD on ``training_loss`` (the
    segmentation loss, or the preset of an instance/panoptic model)."""
    import paddle

    from common.engine import optimizer_step

    loss_of = training_loss(model, y)
    opt = paddle.optimizer.Momentum(0.01, parameters=model.parameters())

    def train():
        model.train()
        optimizer_step(lambda: loss_of(x), opt)

    def infer():
        model.eval()
        with paddle.no_grad():
            model(x)
    return train, infer


def _interleaved(fns, steps, repeats):
    """Seconds per step of each function, timed in turn (A B A B ...) after one warm-up
    step each: an array (repeats, len(fns))."""
    import numpy as np

    for fn in fns:
        fn()
    out = np.zeros((repeats, len(fns)))
    for r in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            out[r, i] = (time.perf_counter() - t) / steps
    return out


def bench_paddleseg(sizes, batch, steps, repeats, names=None):
    """Ours vs PaddleSeg's model of the same architecture, full size, same input: time per
    step of each, interleaved, the ratio PaddleSeg / ours per repeat (> 1: ours faster),
    parameters, and achieved GFLOP/s (hook-counted MACs; training counted as 3 forward
    passes) against a 2048^2 matmul timed in the same rotation (so it sees the same load).
    Both sides run their aux head in training and neither in inference."""
    import numpy as np
    import paddle

    from common.models import build_model

    K = 7  # noqa: N806
    a = paddle.randn([2048, 2048])

    def matmul():
        (a @ a).numpy()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\nours vs PaddleSeg 2.8, batch {batch}, {steps} steps x {repeats} interleaved repeats "
          f"(ours, PaddleSeg's, a 2048^2 matmul, in turn); load average {load}")
    print("ratio = PaddleSeg's time per step / ours (> 1: ours faster), median [min-max]; "
          "GFLOP/s ours / PaddleSeg's (ours as % of the matmul's GFLOP/s, printed after @)")
    for size in sizes:
        x = paddle.randn([batch, 3, size, size])
        y = paddle.randint(0, K, [batch, size, size])
        head = ["params M ours/PS"] + [f"{m} {c}" for m in ("train", "infer")
                                       for c in ("s/step ours/PS", "ratio", "GFLOP/s")]
        print(f"\n{f'{size}x{size}':13s} | " + " | ".join(f"{c:18s}" for c in head))
        for name, kwargs, ctor in PADDLESEG_PAIRS:
            if names and name not in names:
                continue
            paddle.seed(0)
            ours = build_model(name, K, **kwargs)
            theirs = build_paddleseg(ctor, K)
            cells = [f"{_params_m(ours):5.1f}/{_params_m(theirs):5.1f}"]
            (ot, oi), (tt, ti) = _step_fns(ours, x, y), _step_fns(theirs, x, y)
            for mode, fns, passes in (("train", (ot, _with_aux(theirs, tt, True)), 3),
                                      ("eval", (oi, _with_aux(theirs, ti, False)), 1)):
                macs = []
                paddleseg_aux(theirs, mode == "train")
                for m in (ours, theirs):
                    m.train() if mode == "train" else m.eval()
                    macs.append(count_macs(m, x))
                t = _interleaved(fns + (matmul,), steps, repeats)
                ratio = t[:, 1] / t[:, 0]
                med = np.median(t, axis=0)
                peak = 2 * 2048 ** 3 / med[2] / 1e9
                g = [2 * passes * mac / s / 1e9 for mac, s in zip(macs, med)]
                cells += [f"{med[0]:8.3f}/{med[1]:<8.3f}",
                          f"{np.median(ratio):4.2f} [{ratio.min():.2f}-{ratio.max():.2f}]",
                          f"{g[0]:.0f}/{g[1]:.0f} ({100 * g[0] / peak:.0f}% @{peak:.0f})"]
            print(f"{name:13s} | " + " | ".join(f"{c:18s}" for c in cells), flush=True)
            del ours, theirs
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def main(argv=None):
    import common  # noqa: F401  (threads before Paddle)

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, nargs="+", default=[96],
                   help="image side; --paddleseg takes several (e.g. 128 256)")
    p.add_argument("--repeats", type=int, default=4,
                   help="interleaved repeats of the PaddleSeg comparison")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--models", nargs="*", default=None)
    p.add_argument("--skip-threads", action="store_true")
    p.add_argument("--thread-repeats", type=int, default=3,
                   help="interleaved rounds of the thread comparison")
    p.add_argument("--paddleseg", action="store_true",
                   help="only compare with PaddleSeg's models (needs paddleseg importable)")
    a = p.parse_args(argv)
    if a.paddleseg:
        bench_paddleseg(a.size, a.batch, a.steps, a.repeats, a.models)
        return
    from common.runtime import cpu_info
    print(cpu_info())
    if not a.skip_threads:
        bench_threads(a.thread_repeats)
    bench_data(a.size[0], a.batch)
    bench_models(a.models, a.size[0], a.batch, a.steps)


if __name__ == "__main__":
    main()
