"""Day 3: crop-and-concat and the valid U-Net's tile, the receptive field (a stack's size and
the interval a whole U-Net reads), the PSP module."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from common.course.receptive_field import receptive_field
from common.lang import N_, _
from common.models.pspnet import PSPModule
from common.models.unet import center_crop, valid_input_size

from .framework import Case, _rng, check, run_check


def _crop(skip, h, w, top, left):
    return skip[:, :, top:top + h, left:left + w]


@check("day3_unet_psp")
def check_crop_concat(fn, verbose=True):
    """``fn(skip, x)``: (N, C1, H, W) and (N, C2, h, w) NumPy arrays -> (N, C1 + C2, h, w):
    the centred h x w window of ``skip`` (extra pixel at the bottom/right when H - h is odd),
    then ``x``, along channels: U-Net's skip connection.

    """

    rng = _rng(8)
    ramp = lambda h, w: np.arange(h * w, dtype=np.float32).reshape(1, 1, h, w)   # noqa: E731
    cases = [Case(N_("skip 6x6 (0..35), x 4x4 of -1"), (ramp(6, 6), -np.ones((1, 1, 4, 4), np.float32))),
             Case(N_("skip 7x7, x 4x4 (odd margin)"), (ramp(7, 7), -np.ones((1, 1, 4, 4), np.float32))),
             Case(N_("skip 5x8, x 5x4: no crop in height, odd margin 4 in width"),
                  (ramp(5, 8), -np.ones((1, 1, 5, 4), np.float32))),
             Case(N_("skip 9x6, x 4x6: odd margin in height only"), (ramp(9, 6), -np.ones((1, 1, 4, 6), np.float32)))]
    for n, c1, c2, big, small in [(2, 3, 2, (64, 64), (56, 56)), (1, 2, 4, (17, 20), (12, 13)),
                                  (3, 4, 1, (136, 104), (104, 100))]:
        desc = _("random N={n}, skip {c1}x{big}, x {c2}x{small}").format(n=n, c1=c1, big=big, c2=c2, small=small)
        cases.append(Case(desc, (rng.random((n, c1) + big, dtype=np.float32),
                                 rng.random((n, c2) + small, dtype=np.float32))))
    for c in cases:
        s, x = c.args
        crop = center_crop(paddle.to_tensor(s), x.shape[-2:]).numpy()
        c.expected = np.concatenate([crop, x], 1)

    def window(skip, x, shift=0, swap=False):
        (H, W), (h, w) = skip.shape[-2:], x.shape[-2:]
        top, left = (H - h + shift) // 2, (W - w + shift) // 2
        if swap:
            top, left = left, top
        return np.concatenate([_crop(skip, h, w, top, left), x], 1)

    def symmetric(skip, x):                   # cut the same margin from both ends
        mh, mw = (skip.shape[-2] - x.shape[-2]) // 2, (skip.shape[-1] - x.shape[-1]) // 2
        return np.concatenate([skip[:, :, mh:skip.shape[-2] - mh, mw:skip.shape[-1] - mw], x], 1)

    mistakes = [(N_("crop the centre, not the top-left corner: the window starts half the surplus "
                    "in from the top and from the left"),
                 lambda s, x: np.concatenate([_crop(s, *x.shape[-2:], 0, 0), x], 1)),
                (N_("off by one: with an odd surplus the extra pixel goes to the bottom/right, so the "
                    "window's corner is half the surplus rounded down"), lambda s, x: window(s, x, shift=1)),
                (N_("rows and columns: the top offset comes from the heights (H - h), the left one "
                    "from the widths (W - w)"), lambda s, x: window(s, x, swap=True)),
                (N_("cutting the same margin from both ends leaves one row or column too many when "
                    "the surplus is odd: start at the corner and take exactly h rows and w columns"),
                 symmetric),
                (N_("concatenate the skip's window first, then x (the decoder's weights expect the "
                    "skip's channels first)"),
                 lambda s, x: np.concatenate([x, window(s, x)[:, :s.shape[1]]], 1))]
    return run_check("check_crop_concat", fn, cases,
                     N_("cut exactly h rows and w columns out of skip, starting half the surplus in from "
                        "the top and from the left (rounded down), then stack that window and x along "
                        "the channel axis"),
                     mistakes, verbose=verbose)


def _valid_output(n, depth, pixels_per_level=4):
    """Output side of the valid U-Net for input ``n`` (None when a pooled map is odd or
    vanishes); ``pixels_per_level`` lets the check plant the usual mistake."""
    h = n - pixels_per_level
    for _level in range(depth):
        if h < 2 or h % 2:
            return None
        h = h // 2 - pixels_per_level
    if h < 1:
        return None
    for _level in range(depth):
        h = 2 * h - pixels_per_level
    return h if h > 0 else None


def _tile(out_size, depth, margin_of_request=False, **kw):
    n = out_size
    while _valid_output(n, depth, **kw) is None or _valid_output(n, depth, **kw) < out_size:
        n += 1
    got = out_size if margin_of_request else _valid_output(n, depth, **kw)
    return n, (n - got) // 2


@check("day3_unet_psp")
def check_valid_tile(fn, verbose=True):
    """``fn(out_size, depth=4)``: the paper's overlap-tile U-Net (valid 3x3 convs, two per
    level, 2x2 pools that must see even sides, 2x2 transposed convs) -> (tile, margin): the
    smallest input side whose output covers ``out_size`` pixels, and the pixels the network
    loses on each side, (tile - its output side) / 2.

    """
    cases = [Case(N_("the paper: 388 output pixels, depth 4"), (388,)),
             Case(N_("a 96-pixel scene, depth 4"), (96,), dict(depth=4)),
             Case(N_("100 output pixels, depth 4 (no surplus)"), (100,), dict(depth=4)),
             Case(N_("one output pixel, depth 1"), (1,), dict(depth=1)),
             Case(N_("97 output pixels, depth 2 (odd)"), (97,), dict(depth=2)),
             Case(N_("64 output pixels, depth 3"), (64,), dict(depth=3)),
             Case(N_("200 output pixels, depth 5"), (200,), dict(depth=5))]
    for c in cases:
        c.expected = tuple(int(v) for v in valid_input_size(c.args[0], c.kwargs.get("depth", 4)))

    mistakes = [(N_("each level has two 3x3 convs: a level loses 4 pixels (2 per conv), on the way "
                    "down and again on the way up"), lambda s, depth=4: _tile(s, depth, pixels_per_level=2)),
                (N_("the margin is what the network loses, (tile - its output) / 2, not (tile - the "
                    "size you asked for) / 2: the output may cover a few pixels more than asked"),
                 lambda s, depth=4: _tile(s, depth, margin_of_request=True)),
                (N_("use the depth: every level adds its convs and halves the sizes below it"),
                 lambda s, depth=4: _tile(s, 4))]
    return run_check("check_valid_tile", fn, cases,
                     N_("follow one side through the network: two valid convs cost 4 pixels per level, "
                        "a pool halves (the side must be even), a transposed conv doubles; then look for "
                        "the smallest input whose output is at least out_size"), mistakes, verbose=verbose)


def _rf_ref(layers):
    return receptive_field([(k, s, d, 0) for k, s, d in layers])[-1]["rf"] if layers else 1


@check("day3_unet_psp")
def check_receptive_field(fn, verbose=True):
    """``fn(layers)``: a list of (kernel, stride, dilation) -> receptive field (int) of one
    unit of the last layer, in input pixels.

    """
    cases = [Case(N_("no layer: a pixel sees itself"), ([],)),
             Case(N_("two 3x3 convs"), ([(3, 1, 1), (3, 1, 1)],)),
             Case(N_("3x3 conv, 2x2 pool stride 2, 3x3 conv"), ([(3, 1, 1), (2, 2, 1), (3, 1, 1)],)),
             Case(N_("3x3 convs with dilation 1, 2, 4"), ([(3, 1, 1), (3, 1, 2), (3, 1, 4)],)),
             Case(N_("a 1x1 conv with stride 3, then a 3x3 conv"), ([(1, 3, 1), (3, 1, 1)],)),
             Case(N_("U-Net encoder (4 levels of 2 convs + pool)"),
                  ([(3, 1, 1), (3, 1, 1), (2, 2, 1)] * 4 + [(3, 1, 1), (3, 1, 1)],)),
             Case(N_("ResNet-like stem"), ([(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2)],))]
    rng = _rng(9)
    for _i in range(2):              # not _: that name is the translation function here
        n = int(rng.integers(3, 9))
        layers = [(int(rng.choice([1, 2, 3, 5])), int(rng.integers(1, 4)), int(rng.integers(1, 4))) for _k in range(n)]
        cases.append(Case(_("random stack of {n}").format(n=n), (layers,)))
    for c in cases:
        c.expected = _rf_ref(*c.args)

    def walk(layers, jump_first=False, span=lambda k, d: d * (k - 1) + 1):
        rf, jump = 1, 1
        for k, s, d in layers:
            if jump_first:
                jump *= s
            rf += (span(k, d) - 1) * jump
            if not jump_first:
                jump *= s
        return rf

    mistakes = [(N_("multiply the jump by a layer's stride *after* growing the field: a layer's own "
                    "stride spaces its outputs, it does not widen what one of them sees"),
                 lambda layers: walk(layers, jump_first=True)),
                (N_("a dilated kernel spans d (k - 1) + 1 pixels (rate - 1 holes between taps)"),
                 lambda layers: _rf_ref([(k, s, 1) for k, s, _d in layers])),
                (N_("a dilated kernel spans d (k - 1) + 1 pixels, not d k: there are no holes after "
                    "the last tap"), lambda layers: walk(layers, span=lambda k, d: d * k)),
                (N_("each layer adds (span - 1) x jump, where the jump is the product of the strides of "
                    "the layers *before* it"), lambda layers: _rf_ref([(k, 1, d) for k, _s, d in layers])),
                (N_("a unit of the input sees one pixel: start the field at 1, not 0"),
                 lambda layers: _rf_ref(layers) - 1)]
    return run_check("check_receptive_field", fn, cases,
                     N_("walk from the input up, keeping the field and the jump (input pixels between "
                        "neighbouring units): a layer widens the field by its span minus one, counted in "
                        "the current jump, and only then multiplies the jump by its stride"),
                     mistakes, verbose=verbose)


def _chain(layers, x):
    """Run a 1-D chain of ``(kind, kernel, stride, dilation, padding)`` layers on x (1, 1, n),
    every weight one (positive: no path can cancel another)."""
    for kind, k, s, d, p in layers:
        w = paddle.ones([1, 1, k], dtype=x.dtype)
        if kind == "conv":
            x = F.conv1d(x, w, stride=s, padding=p, dilation=d)
        elif kind == "pool":
            x = F.avg_pool1d(x, k, stride=s, padding=p)
        else:
            x = F.conv1d_transpose(x, w, stride=s, padding=p)
    return x


def _interval_by_gradient(layers, lo, hi, n=2048):
    """Input pixels [first, last] whose gradient reaches units lo..hi of the last layer."""
    x = paddle.ones([1, 1, n], dtype="float64")
    x.stop_gradient = False
    y = _chain(layers, x)
    if not 0 <= lo <= hi < y.shape[-1]:
        raise ValueError(_("units {lo}..{hi} outside the {n} outputs").format(lo=lo, hi=hi, n=y.shape[-1]))
    y[0, 0, lo:hi + 1].sum().backward()
    got = np.nonzero(x.grad.numpy()[0, 0])[0]
    if got.min() == 0 or got.max() == n - 1:
        raise ValueError(_("the field touches the input's border: use a longer input"))
    return int(got.min()), int(got.max())


def _unet_path(depth, pad):
    conv = ("conv", 3, 1, 1, pad)
    return ([conv, conv] + [("pool", 2, 2, 1, 0), conv, conv] * depth
            + [("up", 2, 2, 1, 0), conv, conv] * depth)


def _interval(layers, lo, hi, up_as_conv=False, padding=True, dilation=True, up_round="ceil",
              forward=False):
    for kind, k, s, d, p in (layers if forward else reversed(layers)):
        p, d = (p if padding else 0), (d if dilation else 1)
        if kind == "up" and not up_as_conv:
            first = lo + p - k + 1
            lo = -(-first // s) if up_round == "ceil" else first // s
            hi = (hi + p) // s
        else:
            lo, hi = lo * s - p, hi * s - p + d * (k - 1)
    return lo, hi


@check("day3_unet_psp")
def check_receptive_interval(fn, verbose=True):
    """``fn(layers, lo, hi)``: a chain of 1-D layers, each ``(kind, kernel, stride, dilation,
    padding)`` with kind ``"conv"``, ``"pool"`` or ``"up"`` (a transposed conv, dilation 1), and
    the units lo..hi of its last layer -> (first, last): the input pixels those units depend
    on, in input coordinates (negative or past the end where they fall in the padding).

    """
    u2v, u2s = _unet_path(2, 0), _unet_path(2, 1)
    cases = [Case(N_("one 3x3 conv, unit 5"), ([("conv", 3, 1, 1, 0)], 5, 5)),
             Case(N_("one 3x3 conv with padding 1, units 5..8"), ([("conv", 3, 1, 1, 1)], 5, 8)),
             Case(N_("a 3x3 conv at dilation 2, padding 2, stride 2, unit 6"), ([("conv", 3, 2, 2, 2)], 6, 6)),
             Case(N_("Day 3 · 02's stack, unit 9"),
                  ([("conv", 3, 1, 1, 1), ("conv", 3, 1, 1, 1), ("pool", 2, 2, 1, 0), ("conv", 3, 1, 1, 1),
                    ("conv", 3, 1, 2, 2), ("conv", 3, 2, 1, 1)], 9, 9)),
             Case(N_("3x3 conv then a 2x2 transposed conv (stride 2), unit 7"),
                  ([("conv", 3, 1, 1, 1), ("up", 2, 2, 1, 0)], 7, 7)),
             Case(N_("a 3x3 transposed conv, stride 2, padding 1, units 8..9"), ([("up", 3, 2, 1, 1)], 8, 9)),
             Case(N_("valid U-Net of depth 2 (deepest path), unit 20"), (u2v, 20, 20)),
             Case(N_("valid U-Net of depth 2, unit 21"), (u2v, 21, 21)),
             Case(N_("same U-Net of depth 2, units 40..43"), (u2s, 40, 43))]
    hand = len(cases)
    rng = _rng(17)
    for _i in range(3):              # not _: that name is the translation function here
        n = int(rng.integers(3, 7))
        layers = []
        for _k in range(n):
            kind = str(rng.choice(["conv", "conv", "pool", "up"]))
            k = int(rng.integers(2, 5))
            if kind == "up":
                layers.append(("up", k, int(rng.integers(1, 3)), 1, int(rng.integers(0, k))))
            else:
                d = int(rng.integers(1, 4)) if kind == "conv" else 1
                layers.append((kind, k, int(rng.integers(1, 3)), d, int(rng.integers(0, (d * (k - 1)) // 2 + 1))))
        cases.append(Case(_("random chain of {n} layers").format(n=n), (layers, 0, 0)))
    for i, c in enumerate(cases):
        layers, lo, hi = c.args
        if i >= hand:                                # random: a few units in the middle of a long output
            with paddle.no_grad():
                size = _chain(layers, paddle.ones([1, 1, 2048], dtype="float64")).shape[-1]
            lo = size // 2
            c.args = (layers, lo, lo + int(rng.integers(0, 3)))
        c.expected = _interval_by_gradient(*c.args)

    mistakes = [(N_("start from the last layer and walk back to the input: each layer maps an interval "
                    "of its outputs to the interval of its inputs"), lambda L, a, b: _interval(L, a, b, forward=True)),
                (N_("a transposed conv is not a conv: output pixel o is painted by the inputs i with "
                    "i s <= o + p <= i s + k - 1, so going back the interval shrinks (divide by the stride)"),
                 lambda L, a, b: _interval(L, a, b, up_as_conv=True)),
                (N_("padding shifts the window: unit o of a conv reads input o s - p onwards"),
                 lambda L, a, b: _interval(L, a, b, padding=False)),
                (N_("a dilated kernel's last tap is d (k - 1) past its first"),
                 lambda L, a, b: _interval(L, a, b, dilation=False)),
                (N_("for the transposed conv, the first input is rounded up (ceil) and the last one down "
                    "(floor): an input pixel counts only if one of its k painted outputs is in the interval"),
                 lambda L, a, b: _interval(L, a, b, up_round="floor")),
                (N_("return the last input pixel itself (an inclusive interval), not one past it"),
                 lambda L, a, b: (_interval(L, a, b)[0], _interval(L, a, b)[1] + 1))]
    return run_check("check_receptive_interval", fn, cases,
                     N_("walk from the last layer back to the input; a conv or pool maps units lo..hi to "
                        "the inputs from the first window's first tap to the last window's last tap "
                        "(stride, padding and dilation all matter); a transposed conv maps them to the "
                        "inputs that paint at least one of them"), mistakes, verbose=verbose)


@check("day3_unet_psp")
def check_psp_module(fn, verbose=True):
    """``fn(x, bins, stages)``: x (N, C, H, W) paddle Tensor, ``stages[i]`` the 1x1 conv +
    BN + ReLU of bin ``bins[i]`` -> concat([x] + [upsample(stage(adaptive_avg_pool(x, b)))])
    with bilinear upsampling to (H, W), half-pixel (align_corners=False).

    """

    rng = _rng(10)
    cases = []
    for n, c, hw, bins in [(1, 8, (6, 6), (1, 2, 3, 6)), (2, 4, (9, 7), (1, 2, 3, 6)), (1, 8, (5, 11), (1, 3)),
                           (1, 4, (13, 10), (6, 2))]:
        paddle.seed(int(rng.integers(1000)))
        m = PSPModule(c, bins)
        for st in m.stages:                    # BN statistics and biases far from the identity
            for layer in st.sublayers():
                if isinstance(layer, paddle.nn.BatchNorm2D):
                    layer._mean.set_value(rng.standard_normal(layer._mean.shape).astype(np.float32) * 0.5)
                    layer.bias.set_value(rng.standard_normal(layer.bias.shape).astype(np.float32) * 0.5)
        m.eval()
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        stages = [st[1] for st in m.stages]
        cases.append(Case(_("N={n}, C={c}, {hw}, bins {bins}").format(n=n, c=c, hw=hw, bins=bins), (x, bins, stages),
                          expected=m(x).numpy()))

    def variant(x, bins, stages, pool="avg", ac=False, keep_x=True, x_last=False, stage_after=False,
                mode="bilinear"):
        size = x.shape[-2:]
        outs = []
        for b, st in zip(bins, stages):
            p = F.adaptive_avg_pool2d(x, b) if pool == "avg" else F.adaptive_max_pool2d(x, b)
            if not stage_after:
                p = st(p)
            up = F.interpolate(p, size=size, mode=mode, **({"align_corners": ac} if mode == "bilinear" else {}))
            outs.append(st(up) if stage_after else up)
        if keep_x:
            outs = outs + [x] if x_last else [x] + outs
        return paddle.concat(outs, 1)

    mistakes = [(N_("upsample with align_corners=False (half-pixel centres, as everywhere in the course)"),
                 lambda x, b, s: variant(x, b, s, ac=True)),
                (N_("upsample bilinearly: nearest neighbour repeats each bin as a block"),
                 lambda x, b, s: variant(x, b, s, mode="nearest")),
                (N_("pool with the *average* of each bin, not the max"),
                 lambda x, b, s: variant(x, b, s, pool="max")),
                (N_("keep the input itself as the first part of the concatenation (C -> 2C channels)"),
                 lambda x, b, s: variant(x, b, s, keep_x=False)),
                (N_("the input comes first in the concatenation, then the branches in the order of the bins"),
                 lambda x, b, s: variant(x, b, s, x_last=True)),
                (N_("run each stage on the b x b pooled map, then upsample: the stage's ReLU does not "
                    "commute with the interpolation"), lambda x, b, s: variant(x, b, s, stage_after=True))]
    return run_check("check_psp_module", fn, cases,
                     N_("for each bin count: average-pool x to b x b bins, run that bin's stage, resize "
                        "bilinearly (half-pixel) back to x's size; then concatenate x and the branches "
                        "along the channels"), mistakes, verbose=verbose)
