"""`make bench-paddleseg`: ours against PaddleSeg's model of the same architecture, full size.

Time per training and inference step of each, interleaved, parameters, and the GFLOP/s each
reaches (multiply-accumulates counted by hooks, ``count_macs``).
"""
from __future__ import annotations

import os
import time

import numpy as np
import paddle
import paddle.nn as nn

from common.models import build_model

from .steps import step_fns
from .throughput import SCENES, params_m

# Same architecture in PaddleSeg 2.8 (ResNet50_vd: ResNet-50 with a deep stem and avg-pool
# shortcuts) and ours at the papers' full size, ours built in PaddleSeg's configuration by
# named options. tests/course/test_paddleseg_params.py checks the parameter counts: equal, up to
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
    ("ginet", dict(depth=50, num_nodes=84, node_dim=256, head_conv=False, classes=SCENES.classes),
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




def _interleaved(fns, steps, repeats):
    """Seconds per step of each function, timed in turn (A B A B ...) after one warm-up
    step each: an array (repeats, len(fns))."""
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
    K = SCENES.num_classes  # noqa: N806
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
            cells = [f"{params_m(ours):5.1f}/{params_m(theirs):5.1f}"]
            (ot, oi), (tt, ti) = step_fns(ours, x, y), step_fns(theirs, x, y)
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
