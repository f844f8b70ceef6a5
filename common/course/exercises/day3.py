"""Day 3: crop-and-concat, the receptive field, the PSP module."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from common.course.receptive_field import receptive_field
from common.models.pspnet import PSPModule
from common.models.unet import center_crop

from .framework import Case, _rng, check, run_check


def _crop_concat_ref(skip, x):
    h, w = x.shape[-2:]
    H, W = skip.shape[-2:]
    top, left = (H - h) // 2, (W - w) // 2
    return np.concatenate([skip[:, :, top:top + h, left:left + w], x], axis=1)


@check("day3_unet_psp")
def check_crop_concat(fn, verbose=True):
    """``fn(skip, x)``: (N, C1, H, W) and (N, C2, h, w) NumPy arrays -> (N, C1 + C2, h, w):
    the centred h x w window of ``skip`` (extra pixel at the bottom/right when H - h is odd),
    then ``x``, along channels: U-Net's skip connection.

    """

    rng = _rng(8)
    skip = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    cases = [Case("skip 6x6 (0..35), x 4x4 of -1", (skip, -np.ones((1, 1, 4, 4), np.float32))),
             Case("skip 7x7, x 4x4 (odd margin)", (np.arange(49, dtype=np.float32).reshape(1, 1, 7, 7),
                                                   -np.ones((1, 1, 4, 4), np.float32)))]
    for n, c1, c2, big, small in [(2, 3, 2, (64, 64), (56, 56)), (1, 2, 4, (17, 20), (12, 13)),
                                  (1, 4, 4, (136, 136), (104, 104))]:
        cases.append(Case(f"random N={n}, skip {c1}x{big}, x {c2}x{small}",
                          (rng.random((n, c1) + big, dtype=np.float32),
                           rng.random((n, c2) + small, dtype=np.float32))))
    for c in cases:
        s, x = c.args
        crop = center_crop(paddle.to_tensor(s), x.shape[-2:]).numpy()
        c.expected = np.concatenate([crop, x], 1)

    def off_by_one(skip, x):
        h, w = x.shape[-2:]
        top, left = (skip.shape[-2] - h + 1) // 2, (skip.shape[-1] - w + 1) // 2
        return np.concatenate([skip[:, :, top:top + h, left:left + w], x], 1)

    def corner(skip, x):
        h, w = x.shape[-2:]
        return np.concatenate([skip[:, :, :h, :w], x], 1)

    mistakes = [("crop the centre: top = (H - h) // 2, left = (W - w) // 2, and the window is "
                 "[top : top + h]", corner),
                ("off by one: with an odd margin the extra pixel goes to the bottom/right, so "
                 "top = (H - h) // 2 (rounded down)", off_by_one),
                ("concatenate [skip, x] in that order (the skip's channels first)",
                 lambda s, x: np.concatenate([x, _crop_concat_ref(s, x)[:, :s.shape[1]]], 1))]
    return run_check("check_crop_concat", fn, cases,
                     "top = (H - h) // 2, left = (W - w) // 2; crop skip[:, :, top:top+h, "
                     "left:left+w]; np.concatenate([crop, x], axis=1)", mistakes, verbose=verbose)


def _rf_ref(layers):
    return receptive_field([(k, s, d, 0) for k, s, d in layers])[-1]["rf"]


@check("day3_unet_psp")
def check_receptive_field(fn, verbose=True):
    """``fn(layers)``: a list of (kernel, stride, dilation) -> receptive field (int) of one
    unit of the last layer, in input pixels.

    """
    cases = [Case("two 3x3 convs", ([(3, 1, 1), (3, 1, 1)],)),
             Case("3x3 conv, 2x2 pool stride 2, 3x3 conv", ([(3, 1, 1), (2, 2, 1), (3, 1, 1)],)),
             Case("3x3 convs with dilation 1, 2, 4", ([(3, 1, 1), (3, 1, 2), (3, 1, 4)],)),
             Case("U-Net encoder (4 levels of 2 convs + pool)",
                  ([(3, 1, 1), (3, 1, 1), (2, 2, 1)] * 4 + [(3, 1, 1), (3, 1, 1)],)),
             Case("ResNet-like stem", ([(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2)],))]
    rng = _rng(9)
    for _ in range(2):
        n = int(rng.integers(3, 9))
        cases.append(Case(f"random stack of {n}", ([(int(rng.choice([1, 2, 3, 5])), int(rng.integers(1, 3)),
                                                     int(rng.integers(1, 4))) for _ in range(n)],)))
    for c in cases:
        c.expected = _rf_ref(*c.args)

    def jump_first(layers):
        rf, jump = 1, 1
        for k, s, d in layers:
            jump *= s
            rf += d * (k - 1) * jump
        return rf

    mistakes = [("update the jump (product of strides) *after* growing the field: a layer's own "
                 "stride does not widen what it sees", jump_first),
                ("a dilated kernel spans d * (k - 1) + 1 pixels",
                 lambda layers: _rf_ref([(k, s, 1) for k, s, _ in layers])),
                ("each layer adds (k_eff - 1) * jump, where jump is the product of the strides "
                 "*before* it", lambda layers: _rf_ref([(k, 1, d) for k, _, d in layers]))]
    return run_check("check_receptive_field", fn, cases,
                     "rf = 1, jump = 1; for each layer: rf += (d * (k - 1)) * jump, then jump *= s",
                     mistakes, verbose=verbose)


@check("day3_unet_psp")
def check_psp_module(fn, verbose=True):
    """``fn(x, bins, stages)``: x (N, C, H, W) paddle Tensor, ``stages[i]`` the 1x1 conv +
    BN + ReLU of bin ``bins[i]`` -> concat([x] + [upsample(stage(adaptive_avg_pool(x, b)))])
    with bilinear upsampling to (H, W), half-pixel (align_corners=False).

    """

    rng = _rng(10)
    cases = []
    for n, c, hw, bins in [(1, 8, (6, 6), (1, 2, 3, 6)), (2, 4, (9, 7), (1, 2, 3, 6)), (1, 8, (5, 11), (1, 3))]:
        paddle.seed(int(rng.integers(1000)))
        m = PSPModule(c, bins)
        for st in m.stages:                    # non-trivial BN statistics
            bn = st[1].bn if hasattr(st[1], "bn") else None
            if bn is not None:
                bn._mean.set_value(rng.standard_normal(bn._mean.shape).astype(np.float32) * 0.1)
        m.eval()
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        stages = [st[1] for st in m.stages]
        cases.append(Case(f"N={n}, C={c}, {hw}, bins {bins}", (x, bins, stages),
                          expected=m(x).numpy()))

    def variant(x, bins, stages, pool="avg", ac=False, keep_x=True):
        size = x.shape[-2:]
        outs = [x] if keep_x else []
        for b, st in zip(bins, stages):
            p = F.adaptive_avg_pool2d(x, b) if pool == "avg" else F.adaptive_max_pool2d(x, b)
            outs.append(F.interpolate(st(p), size=size, mode="bilinear", align_corners=ac))
        return paddle.concat(outs, 1)

    mistakes = [("upsample with align_corners=False (half-pixel centres, as everywhere in the course)",
                 lambda x, b, s: variant(x, b, s, ac=True)),
                ("pool with the *average* of each bin (F.adaptive_avg_pool2d), not the max",
                 lambda x, b, s: variant(x, b, s, pool="max")),
                ("keep the input itself as the first part of the concatenation (C -> 2C channels)",
                 lambda x, b, s: variant(x, b, s, keep_x=False))]
    return run_check("check_psp_module", fn, cases,
                     "for each bin b: F.adaptive_avg_pool2d(x, b) -> stage -> F.interpolate(..., "
                     "size=(H, W), mode='bilinear', align_corners=False); paddle.concat([x, ...], axis=1)",
                     mistakes, verbose=verbose)
