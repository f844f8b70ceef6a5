"""Day 2: bilinear resize, un-pooling, transposed convolution, FC as a 1x1 convolution."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from common.ops import bilinear_resize, conv2d, fc_weight_to_conv, max_pool2d_with_indices, max_unpool2d, zero_insert

from .framework import Case, _rng, check, run_check


def _bilinear_ref(x, size, align_corners=False):
    return bilinear_resize(x, size, align_corners)


@check("day2_fcn")
def check_bilinear_resize(fn, verbose=True):
    """``fn(x, size, align_corners=False)``: (H, W) array -> (H_out, W_out), as Paddle's
    ``interpolate(mode='bilinear')``.

    """

    a = np.array([[0, 10, 20], [30, 40, 50]], np.float32)
    rng = _rng(4)
    cases = [Case("2x3 -> 4x6, half-pixel", (a, (4, 6))),
             Case("2x3 -> 4x6, align_corners=True", (a, (4, 6)), dict(align_corners=True)),
             Case("3x3 -> 2x2 (down)", (np.arange(9, dtype=np.float32).reshape(3, 3), (2, 2)))]
    for shape, size, ac in [((7, 5), (16, 9), False), ((13, 11), (5, 17), True), ((6, 9), (2, 4), False)]:
        cases.append(Case(f"random {shape} -> {size}", (rng.random(shape, dtype=np.float32), size),
                          dict(align_corners=ac)))
    for c in cases:
        x, size = c.args
        ac = c.kwargs.get("align_corners", False)
        c.expected = F.interpolate(paddle.to_tensor(x[None, None]), size=list(size), mode="bilinear",
                                   align_corners=ac)[0, 0].numpy()

    def no_clamp(x, size, align_corners=False):
        def coords(n_out, n_in):
            d = np.arange(n_out)
            src = d * (n_in - 1) / max(n_out - 1, 1) if align_corners else (d + 0.5) * n_in / n_out - 0.5
            i0 = np.floor(src).astype(int)
            return i0, np.minimum(i0 + 1, n_in - 1), src - i0
        j0, j1, tx = coords(size[1], x.shape[1])
        r = x[:, j0] * (1 - tx) + x[:, j1] * tx
        i0, i1, ty = coords(size[0], x.shape[0])
        return r[i0] * (1 - ty[:, None]) + r[i1] * ty[:, None]

    mistakes = [
        ("you used the other align_corners convention: False means half-pixel centres, "
         "src = (d + 0.5) * in / out - 0.5; True means src = d * (in - 1) / (out - 1)",
         lambda x, size, align_corners=False: _bilinear_ref(x, size, not align_corners)),
        ("clamp the source position at 0 (np.maximum(src, 0)): with half-pixel centres the "
         "first outputs map to src < 0, and index -1 wraps to the last pixel", no_clamp),
        ("size is (H_out, W_out): rows first; x (width) uses size[1]",
         lambda x, size, align_corners=False: _bilinear_ref(x, size[::-1], align_corners)),
    ]
    return run_check("check_bilinear_resize", fn, cases,
                     "interpolate each row along x (two neighbours floor(src) and floor(src) + 1, "
                     "clipped to the last index, weights 1 - t and t), then each column along y",
                     mistakes, verbose=verbose)


@check("day2_fcn")
def check_max_unpool(fn, verbose=True):
    """``fn(x, indices, output_size)``: values (C, h, w) and flat per-plane indices
    ``row * W + col`` -> (C, H, W) of zeros with each value at its index.

    """

    x = np.array([[1, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]], np.float32)[None]
    rng = _rng(5)
    cases = []
    for desc, inp, k in [("the 4x4 example of Day 2 · 02", x, 2),
                         ("2 channels, 6x9, kernel 3", rng.random((2, 6, 9), dtype=np.float32), 3),
                         ("3 channels, 8x6, kernel 2", rng.random((3, 8, 6), dtype=np.float32), 2)]:
        v, idx = max_pool2d_with_indices(inp, k)
        cases.append(Case(desc, (v, idx, inp.shape[1:]),
                          expected=max_unpool2d(v, idx, k, output_size=inp.shape[1:])))
    v, idx = max_pool2d_with_indices(rng.random((2, 7, 5), dtype=np.float32), 2)
    cases.append(Case("7x5 pooled by 2 (odd sides: the last row and column were dropped)",
                      (v, idx, (7, 5)), expected=max_unpool2d(v, idx, 2, output_size=(7, 5))))

    def decode_with_h(x, idx, size):
        h, w = size
        return max_unpool2d(x, (idx // h) * w + idx % h, 1, output_size=size)

    mistakes = [("the index is row * W + col with W the width of the *output*: decode with "
                 "divmod(index, W), not with H", decode_with_h)]
    return run_check("check_max_unpool", fn, cases,
                     "an index is row * W + col in a plane of the output size (H, W): start from "
                     "zeros (C, H * W), put each value at its index in its own channel "
                     "(np.put_along_axis), reshape to (C, H, W)",
                     mistakes, verbose=verbose)


def _tconv_ref(x, w, stride=1, padding=0):
    return F.conv2d_transpose(paddle.to_tensor(x[None]), paddle.to_tensor(w), stride=stride,
                              padding=padding)[0].numpy()


@check("day2_fcn")
def check_transposed_conv(fn, verbose=True):
    """``fn(x, w, stride=1, padding=0)``: x (C_in, H, W), w Paddle's (C_in, C_out, k, k) ->
    (C_out, H_out, W_out) as ``conv2d_transpose``.

    """

    x = np.array([[1, 2], [3, 4]], np.float32)[None]
    w = np.array([[1, 2], [3, 4]], np.float32)[None, None]
    rng = _rng(6)
    cases = [Case("2x2 input, 2x2 kernel, stride 1", (x, w)),
             Case("2x2 input, 2x2 kernel, stride 2", (x, w), dict(stride=2)),
             Case("3x3 kernel (asymmetric), stride 2, padding 1",
                  (rng.standard_normal((1, 3, 3)).astype(np.float32),
                   np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)), dict(stride=2, padding=1))]
    for cin, cout, hw, k, s, p in [(2, 3, (4, 5), 3, 2, 1), (3, 2, (5, 3), 4, 2, 1), (2, 2, (3, 4), 3, 3, 0)]:
        cases.append(Case(f"random C_in={cin} C_out={cout} {hw} k={k} s={s} p={p}",
                          (rng.standard_normal((cin,) + hw).astype(np.float32),
                           rng.standard_normal((cin, cout, k, k)).astype(np.float32)),
                          dict(stride=s, padding=p)))
    for c in cases:
        c.expected = _tconv_ref(*c.args, **c.kwargs)

    def recipe(x, w, stride=1, padding=0, rotate=True, pad_fix=True, insert=1):
        k = w.shape[-1]
        z = zero_insert(x, stride if insert == 1 else stride + 1)
        p = k - 1 - padding if pad_fix else k - 1
        z = np.pad(z, ((0, 0), (p, p), (p, p))) if p >= 0 else z[:, -p:p, -p:p]
        wr = w.transpose(1, 0, 2, 3)
        return conv2d(z, wr[:, :, ::-1, ::-1] if rotate else wr)

    mistakes = [
        ("rotate the kernel by 180 degrees (w[:, :, ::-1, ::-1]) before the convolution",
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, rotate=False)),
        ("pad by k - 1 - padding on each side (the padding of the forward conv is taken away)",
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, pad_fix=False)),
        ("insert stride - 1 zeros between neighbouring pixels, not stride",
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, insert=2)),
    ]
    return run_check("check_transposed_conv", fn, cases,
                     "zero-insert stride - 1 zeros (ops.zero_insert), pad every side by "
                     "k - 1 - padding, then ops.conv2d with w.transpose(1, 0, 2, 3) rotated "
                     "by 180 degrees; the output is C_out x ((H-1)s - 2p + k) x ...",
                     mistakes, verbose=verbose)


@check("day2_fcn")
def check_fc_to_conv(fn, verbose=True):
    """``fn(weight, in_shape)``: Paddle Linear weight (C*h*w, out) -> conv weight
    (out, C, h, w) such that the conv over the (C, h, w) map equals the Linear.

    """

    rng = _rng(7)
    cases = [Case("Linear 4 -> 2 as a 1x1 conv", (np.arange(8, dtype=np.float32).reshape(4, 2), (4, 1, 1))),
             Case("Linear 2*2*2 -> 3 as a 2x2 conv", (np.arange(24, dtype=np.float32).reshape(8, 3), (2, 2, 2)))]
    for c, h, w, out in [(3, 4, 5, 6), (16, 1, 1, 10), (5, 3, 2, 4)]:
        cases.append(Case(f"random Linear {c}*{h}*{w} -> {out}",
                          (rng.standard_normal((c * h * w, out)).astype(np.float32), (c, h, w))))
    for case in cases:
        case.expected = fc_weight_to_conv(case.args[0], None, case.args[1])

    mistakes = [
        ("Paddle's Linear weight is (in, out): transpose it to (out, in) before reshaping; "
         "reshaping directly mixes inputs and outputs",
         lambda wt, shape: wt.reshape(wt.shape[1], *shape)),
        ("Paddle flattens (C, h, w) with C slowest: reshape to (out, C, h, w), not (out, h, w, C)",
         lambda wt, shape: wt.T.reshape(wt.shape[1], shape[1], shape[2], shape[0]).transpose(0, 3, 1, 2)),
    ]
    return run_check("check_fc_to_conv", fn, cases,
                     "weight.T has one row per output unit over the flattened (C, h, w) input: "
                     "reshape it to (out, C, h, w)", mistakes, verbose=verbose)
