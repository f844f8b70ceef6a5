"""Day 2: bilinear resize, un-pooling, transposed convolution, FC as a 1x1 convolution."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from common.lang import N_, _
from common.models import build_model
from common.ops import (bilinear_resize, conv2d, fc_weight_to_conv, max_pool2d_with_indices, max_unpool2d,
                        random_pool_indices, zero_insert)

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
    cases = [Case(N_("2x3 -> 4x6, half-pixel"), (a, (4, 6))),
             Case(N_("2x3 -> 4x6, align_corners=True"), (a, (4, 6)), dict(align_corners=True)),
             Case(N_("3x3 -> 2x2 (down)"), (np.arange(9, dtype=np.float32).reshape(3, 3), (2, 2)))]
    for shape, size, ac in [((7, 5), (16, 9), False), ((13, 11), (5, 17), True), ((6, 9), (2, 4), False),
                            ((1, 6), (3, 10), False), ((9, 8), (3, 3), True)]:
        cases.append(Case(_("random {shape} -> {size}, align_corners={ac}").format(shape=shape, size=size, ac=ac),
                          (rng.random(shape, dtype=np.float32), size), dict(align_corners=ac)))
    for ac in (False, True):
        cases.append(Case(_("an output side of 1: (5, 7) -> (1, 4), align_corners={ac}").format(ac=ac),
                          (rng.random((5, 7), dtype=np.float32), (1, 4)), dict(align_corners=ac)))
    for c in cases:
        x, size = c.args
        ac = c.kwargs.get("align_corners", False)
        c.expected = F.interpolate(paddle.to_tensor(x[None, None]), size=list(size), mode="bilinear",
                                   align_corners=ac)[0, 0].numpy()

    def coords(n_out, n_in, align_corners, clamp=True, scale_of_one=None):
        """A mistaken source axis: no clamp at 0, or the half-pixel scale kept for a side of 1."""
        d = np.arange(n_out)
        if align_corners:
            src = d * (n_in - 1) / max(n_out - 1, 1)
        else:
            scale = n_in / n_out if n_out > 1 or scale_of_one else 0.0
            src = (d + 0.5) * scale - 0.5
            src = np.maximum(src, 0) if clamp else src
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    def separable(x, size, align_corners=False, **mistake):
        j0, j1, tx = coords(size[1], x.shape[1], align_corners, **mistake)
        rows = x[:, j0] * (1 - tx) + x[:, j1] * tx
        i0, i1, ty = coords(size[0], x.shape[0], align_corners, **mistake)
        return rows[i0] * (1 - ty[:, None]) + rows[i1] * ty[:, None]

    def no_clamp(x, size, align_corners=False):
        return separable(x, size, align_corners, clamp=False)

    def centre_of_one(x, size, align_corners=False):
        """Half-pixel centres even for an output side of 1 (OpenCV's choice, not Paddle's)."""
        return separable(x, size, align_corners, scale_of_one=True)

    mistakes = [
        (N_("you used the other align_corners convention: False means half-pixel centres, "
            "src = (d + 0.5) * in / out - 0.5; True means src = d * (in - 1) / (out - 1)"),
         lambda x, size, align_corners=False: _bilinear_ref(x, size, not align_corners)),
        (N_("an output side of length 1 is Paddle's corner case: it reads input position 0 (the "
            "scale in / out is taken as 0 there), not the centre"), centre_of_one),
        (N_("size is (H_out, W_out): rows first; the x axis (width) uses the second entry"),
         lambda x, size, align_corners=False: _bilinear_ref(x, size[::-1], align_corners)),
        (N_("clamp the source position at 0: with half-pixel centres the first outputs map to "
            "src < 0, and index -1 wraps around to the last pixel"), no_clamp),
    ]
    return run_check("check_bilinear_resize", fn, cases,
                     N_("interpolate each row along x (the two neighbours floor(src) and floor(src) + 1, "
                        "the second clipped to the last index, weights 1 - t and t), then each column "
                        "along y; an output side of 1 reads position 0"), mistakes, verbose=verbose)


@check("day2_fcn")
def check_max_unpool(fn, verbose=True):
    """``fn(x, indices, output_size)``: values (C, h, w) and flat per-plane indices
    ``row * W + col`` -> (C, H, W) of zeros with each value at its index.

    """

    x = np.array([[1, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]], np.float32)[None]
    rng = _rng(5)
    cases = []
    for desc, inp, k in [(N_("the 4x4 example of Day 2 · 02"), x, 2),
                         (N_("2 channels, 6x9, kernel 3"), rng.random((2, 6, 9), dtype=np.float32), 3),
                         (N_("3 channels, 8x6, kernel 2"), rng.random((3, 8, 6), dtype=np.float32), 2)]:
        v, idx = max_pool2d_with_indices(inp, k)
        cases.append(Case(desc, (v, idx, inp.shape[1:]),
                          expected=max_unpool2d(v, idx, k, output_size=inp.shape[1:])))
    v, idx = max_pool2d_with_indices(rng.random((2, 7, 5), dtype=np.float32), 2)
    cases.append(Case(N_("7x5 pooled by 2 (odd sides: the last row and column were dropped)"),
                      (v, idx, (7, 5)), expected=max_unpool2d(v, idx, 2, output_size=(7, 5))))
    v = rng.random((3, 3, 4), dtype=np.float32)
    idx = random_pool_indices(v.shape, 2, seed=3)
    cases.append(Case(N_("indices drawn at random in each 2x2 window (the notes: 可随机生成)"),
                      (v, idx, (6, 8)), expected=max_unpool2d(v, idx, 2, output_size=(6, 8))))

    def decode_with_h(x, idx, size):
        h, w = size
        return max_unpool2d(x, (idx // h) * w + idx % h, 1, output_size=size)

    def one_flat_array(x, idx, size):
        out = np.zeros(x.shape[0] * size[0] * size[1], np.float32)
        np.put(out, idx.ravel(), x.ravel())          # every channel written into plane 0
        return out.reshape(x.shape[0], *size)

    mistakes = [(N_("the index is row * W + col with W the width of the *output*: decode it with "
                    "the width, not the height"), decode_with_h),
                (N_("the indices count inside each channel's own plane (0 .. H * W - 1): write "
                    "channel c's values into plane c, not all into one flat array"), one_flat_array)]
    return run_check("check_max_unpool", fn, cases,
                     N_("use the output_size you are given (pooling drops the last row or column of an "
                        "odd side, and the kernel need not be 2): an index is row * W + col in one plane "
                        "of that size; start from zero planes, put each value at its index in its own "
                        "channel's plane, give the result the shape (C, H, W)"), mistakes, verbose=verbose)


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
    cases = [Case(N_("2x2 input, 2x2 kernel, stride 1"), (x, w)),
             Case(N_("2x2 input, 2x2 kernel, stride 2"), (x, w), dict(stride=2)),
             Case(N_("3x3 kernel (asymmetric), stride 2, padding 1"),
                  (rng.standard_normal((1, 3, 3)).astype(np.float32),
                   np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)), dict(stride=2, padding=1))]
    for cin, cout, hw, k, s, p in [(2, 3, (4, 5), 3, 2, 1), (3, 2, (5, 3), 4, 2, 1), (2, 2, (3, 4), 3, 3, 0),
                                   (1, 2, (5, 4), 3, 2, 3)]:
        note = _(": padding > k - 1, so the recipe's padding is negative (a crop)") if p > k - 1 else ""
        cases.append(Case(_("random C_in={cin} C_out={cout} {hw} k={k} s={s} p={p}{note}").format(
                              cin=cin, cout=cout, hw=hw, k=k, s=s, p=p, note=note),
                          (rng.standard_normal((cin,) + hw).astype(np.float32),
                           rng.standard_normal((cin, cout, k, k)).astype(np.float32)),
                          dict(stride=s, padding=p)))
    for c in cases:
        c.expected = _tconv_ref(*c.args, **c.kwargs)

    def recipe(x, w, stride=1, padding=0, flip=(-1, -1), pad_fix=True, insert=1):
        k = w.shape[-1]
        z = zero_insert(x, stride if insert == 1 else stride + 1)
        p = k - 1 - padding if pad_fix else k - 1
        z = np.pad(z, ((0, 0), (p, p), (p, p))) if p >= 0 else z[:, -p:p, -p:p]
        wr = w.transpose(1, 0, 2, 3)
        return conv2d(z, wr[:, :, ::flip[0], ::flip[1]])

    mistakes = [
        (N_("rotate the kernel by 180 degrees before the convolution (a transposed conv is not "
            "the same conv run on a bigger input)"),
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, flip=(1, 1))),
        (N_("a rotation by 180 degrees flips the kernel along both axes, rows and columns"),
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, flip=(-1, 1))),
        (N_("pad by k - 1 - padding on each side (the padding of the forward conv is taken away)"),
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, pad_fix=False)),
        (N_("insert stride - 1 zeros between neighbouring pixels, not stride"),
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, insert=2)),
    ]
    return run_check("check_transposed_conv", fn, cases,
                     N_("three steps: stride - 1 zeros between neighbouring input pixels, k - 1 - padding "
                        "zeros around (a negative amount means cutting that many from each border), then "
                        "a stride-1 convolution with the kernel rotated by 180 degrees and its two "
                        "channel axes swapped to (C_out, C_in); the output side is "
                        "(H - 1) * stride - 2 * padding + k"), mistakes, verbose=verbose)


@check("day2_fcn")
def check_fc_to_conv(fn, verbose=True):
    """``fn(weight, in_shape)``: Paddle Linear weight (C*h*w, out) -> conv weight
    (out, C, h, w) such that the conv over the (C, h, w) map equals the Linear.

    """

    rng = _rng(7)
    cases = [Case(N_("Linear 4 -> 2 as a 1x1 conv"), (np.arange(8, dtype=np.float32).reshape(4, 2), (4, 1, 1))),
             Case(N_("Linear 2*2*2 -> 3 as a 2x2 conv"), (np.arange(24, dtype=np.float32).reshape(8, 3), (2, 2, 2)))]
    for c, h, w, out in [(3, 4, 5, 6), (16, 1, 1, 10), (5, 3, 2, 4), (2, 7, 7, 3)]:
        cases.append(Case(_("random Linear {c}*{h}*{w} -> {out}").format(c=c, h=h, w=w, out=out),
                          (rng.standard_normal((c * h * w, out)).astype(np.float32), (c, h, w))))
    for case in cases:
        case.expected = fc_weight_to_conv(case.args[0], None, case.args[1])

    mistakes = [
        (N_("Paddle's Linear weight is (in, out): transpose it to (out, in) before reshaping; "
            "reshaping directly mixes inputs and outputs"),
         lambda wt, shape: wt.reshape(wt.shape[1], *shape)),
        (N_("Paddle flattens (C, h, w) with C slowest: reshape to (out, C, h, w), not (out, h, w, C)"),
         lambda wt, shape: wt.T.reshape(wt.shape[1], shape[1], shape[2], shape[0]).transpose(0, 3, 1, 2)),
        (N_("inside each channel Paddle flattens row by row (h before w), not column by column"),
         lambda wt, shape: wt.T.reshape(wt.shape[1], shape[0], shape[2], shape[1]).transpose(0, 1, 3, 2)),
    ]
    return run_check("check_fc_to_conv", fn, cases,
                     N_("output j of the Linear is the sum of the flattened input times column j of "
                        "the weight: that column, laid back out over (C, h, w) in the order Paddle "
                        "flattened it, is output j's conv kernel"), mistakes, verbose=verbose)


# ------------------------------------------------------------------ FCN's skip fusion
def _fuse_ref(coarse, skip, up2):
    h, w = skip.shape[-2:]
    return up2(coarse)[:, :, :h, :w] + skip


def _fcn_parts(stride, seed, num_classes=3):
    """A narrow FCN of ``common.models`` with non-zero skip scores and trained-looking (not
    bilinear) up-sampling kernels, so that every part shows in the logits."""
    paddle.seed(seed)
    model = build_model(f"fcn{stride}s", num_classes, width=4, fc_channels=16, batch_norm=False, dropout=0.0)
    rng = _rng(seed)
    for name, p in model.named_parameters():
        if "score_pool" in name or "deconv" in name:
            p.set_value((p.numpy() + rng.normal(0, 0.05, p.shape)).astype("float32"))
    model.eval()
    return model


class _NoForward:
    """The model's parts without its ``forward``: the student builds the decoder."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, *args, **kwargs):
        raise RuntimeError(_("build the logits from the model's parts (backbone, score_fr, "
                             "score_pool4, up2_fr, ...): calling the whole model is not the exercise"))


def _up2_layer(channels, seed):
    """A 2x transposed conv (k 4, s 2, p 1) with random weights, as a trained FCN has."""
    paddle.seed(seed)
    layer = paddle.nn.Conv2DTranspose(channels, channels, 4, stride=2, padding=1, bias_attr=False)
    layer.eval()
    return layer


@check("day2_fcn")
def check_fcn_fuse(fn, verbose=True):
    """``fn(coarse, skip, up2)``: FCN's skip fusion. ``coarse`` (N, K, h, w) class scores at
    stride 2s, ``skip`` (N, K, H, W) class scores at stride s (H <= 2h, W <= 2w), ``up2`` the
    learned 2x up-sampling layer -> ``up2(coarse)`` cut to H x W at the top left, plus ``skip``.

    """
    rng = _rng(9)
    cases = []
    for desc, n, k, hw, HW in [(N_("2x3 scores onto 4x6, one class"), 1, 1, (2, 3), (4, 6)),
                               (N_("3x4 onto 6x8, 3 classes, a batch of 2"), 2, 3, (3, 4), (6, 8)),
                               (N_("odd skip sides: 3x4 onto 5x7 (pooling dropped a row and a column)"),
                                1, 3, (3, 4), (5, 7)),
                               (N_("a skip 2 smaller than 2h: 4x4 onto 6x7"), 1, 2, (4, 4), (6, 7))]:
        coarse = paddle.to_tensor(rng.standard_normal((n, k) + hw).astype(np.float32))
        skip = paddle.to_tensor(rng.standard_normal((n, k) + HW).astype(np.float32))
        cases.append(Case(desc, (coarse, skip, _up2_layer(k, len(cases)))))
    for c in cases:
        c.expected = _fuse_ref(*c.args).numpy()

    def crop(up, skip, where):
        h, w = skip.shape[-2:]
        H, W = up.shape[-2:]
        top, left = {"centre": ((H - h) // 2, (W - w) // 2), "end": (H - h, W - w)}[where]
        return up[:, :, top:top + h, left:left + w]

    mistakes = [
        (N_("use the up2 layer you are given (FCN's learned up-sampling), not a fixed "
            "interpolation"), lambda c, s, up: F.interpolate(c, size=list(s.shape[-2:]), mode="bilinear") + s),
        (N_("FCN adds the two score maps pixel by pixel; concatenating them along the channels is "
            "U-Net's way"), lambda c, s, up: paddle.concat([_fuse_ref(c, s, up) - s, s], 1)),
        (N_("the fusion adds the skip's scores to the up-sampled coarse scores: the skip is "
            "missing"), lambda c, s, up: _fuse_ref(c, s, up) - s),
        (N_("cut the up-sampled map at the top left: output pixel i of a 2x layer with padding 1 "
            "sits over the fine pixel i, so the extra rows and columns are at the bottom and right"),
         lambda c, s, up: crop(up(c), s, "end") + s),
        (N_("cut at the top left, not from the centre: the two grids are aligned at their first "
            "pixel"), lambda c, s, up: crop(up(c), s, "centre") + s),
    ]
    return run_check("check_fcn_fuse", fn, cases,
                     N_("up-sample the coarse scores with the given layer (2h x 2w), keep its first H "
                        "rows and W columns (the skip's size: pooling drops the last row of an odd "
                        "side), and add the skip scores"), mistakes, verbose=verbose)


def _fcn_logits_ref(model, x, fuse=_fuse_ref, pad="bottom_right", crop=True, final=None):
    h, w = x.shape[-2:]
    ph, pw = -h % 32, -w % 32
    sides = {"bottom_right": [0, pw, 0, ph], "top_left": [pw, 0, ph, 0]}[pad]
    if ph or pw:
        x = F.pad(x, sides)
    feats = model.backbone(x)
    score = model.score_fr(feats[5])
    if model.stride <= 16:
        score = fuse(score, model.score_pool4(feats[3]), model.up2_fr)
    if model.stride == 8:
        score = fuse(score, model.score_pool3(feats[2]), model.up2_pool4)
    out = final(score, model.stride) if final else model.up_final(score)
    return out[:, :, :h, :w] if crop else out


@check("day2_fcn")
def check_fcn_logits(fn, verbose=True):
    """``fn(model, x)``: the logits (N, K, H, W) of a ``common.models`` FCN-32s/16s/8s
    (``model.stride``) for images ``x`` (N, 3, H, W), built from its parts with the student's
    fusion: pad to a multiple of 32 at the bottom/right, backbone, scores of fc7, the skips of
    pool4 (16s, 8s) and pool3 (8s), the final up-sampling, crop back to H x W.

    """
    rng = _rng(10)
    cases = []
    for stride, n, hw in [(32, 1, (64, 64)), (16, 1, (64, 96)), (8, 2, (64, 64)), (8, 1, (75, 101)),
                          (16, 1, (33, 47))]:
        model = _fcn_parts(stride, 20 + len(cases))
        x = paddle.to_tensor(rng.standard_normal((n, 3) + hw).astype(np.float32))
        with paddle.no_grad():
            expected = model(x).numpy()
        cases.append(Case(_("FCN-{stride}s, {n} image(s) of {h}x{w}").format(stride=stride, n=n, h=hw[0], w=hw[1]),
                          (_NoForward(model), x), expected=expected,
                          inputs=_("an fcn{stride}s of common.models (width 4, 3 classes, eval mode), "
                                   "x ({n}, 3, {h}, {w})").format(stride=stride, n=n, h=hw[0], w=hw[1])))

    def run(f, case):
        with paddle.no_grad():
            return f(*case.args)

    def bilinear_final(score, stride):
        return F.interpolate(score, scale_factor=stride, mode="bilinear")

    mistakes = [
        (N_("crop the logits back to the input's H x W: the model worked on the padded image"),
         lambda m, x: _fcn_logits_ref(m, x, crop=False)),
        (N_("pad at the bottom and right only: padding the top or left shifts every pixel"),
         lambda m, x: _fcn_logits_ref(m, x, pad="top_left")),
        (N_("the last step is the model's own final up-sampling layer (learned), not a fixed "
            "interpolation"), lambda m, x: _fcn_logits_ref(m, x, final=bilinear_final)),
        (N_("return the logits themselves: no softmax or argmax"),
         lambda m, x: F.softmax(_fcn_logits_ref(m, x), axis=1)),
    ]
    return run_check("check_fcn_logits", fn, cases,
                     N_("build the logits from the model's parts: pad the images at the bottom and "
                        "right to a multiple of 32; the backbone "
                        "returns [pool1, ..., pool5, fc7]; class scores of fc7 first, then for "
                        "FCN-16s and 8s fuse the scores of pool4, for 8s then those of pool3 (each "
                        "with its own 2x layer); the final up-sampling by the model's stride; crop to "
                        "H x W"), mistakes, atol=1e-4, call=run, verbose=verbose)
