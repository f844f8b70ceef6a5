"""Day 4: atrous convolution, ASPP summed and concatenated, one mean-field CRF step."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from common import crf
from common.crf import dense_crf_exact, _softmax, _unary
from common.lang import N_, _
from common.models.deeplab import ASPPConcat, ASPPSum
from common.ops import conv2d, dilate_kernel

from .framework import Case, _rng, check, run_check


@check("day4_deeplab")
def check_atrous_conv(fn, verbose=True):
    """``fn(x, w, rate, padding=0)``: x (C, H, W), w (C_out, C, k, k) -> the conv with the
    kernel dilated by ``rate`` (rate - 1 zeros between taps), as Paddle's ``dilation=rate``.

    """

    rng = _rng(11)
    x = np.arange(49, dtype=np.float32).reshape(1, 7, 7)
    w = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    cases = [Case(N_("7x7 ramp, 3x3 kernel 1..9, rate 2"), (x, w, 2)),
             Case(N_("7x7 ramp, rate 3, padding 3 ('same')"), (x, w, 3), dict(padding=3)),
             Case(N_("7x7 ramp, rate 1 (an ordinary conv), padding 1"), (x, w, 1), dict(padding=1))]
    for c, o, hw, k, r, p in [(2, 3, (12, 10), 3, 2, 2), (3, 2, (15, 16), 3, 4, 0), (1, 2, (11, 9), 2, 3, 1),
                              (2, 2, (9, 13), 3, 2, 5), (2, 3, (8, 8), 1, 3, 1)]:
        desc = _("random C={c}->{o} {hw} k={k} rate {r} padding {p}").format(c=c, o=o, hw=hw, k=k, r=r, p=p)
        cases.append(Case(desc,
                          (rng.standard_normal((c,) + hw).astype(np.float32),
                           rng.standard_normal((o, c, k, k)).astype(np.float32), r), dict(padding=p)))
    for case in cases:
        xx, ww, r = case.args
        case.expected = F.conv2d(paddle.to_tensor(xx[None]), paddle.to_tensor(ww), dilation=r,
                                 padding=case.kwargs.get("padding", 0))[0].numpy()

    def dilated(w, rate, zeros=None, size=None):
        k = w.shape[-1]
        step = rate if zeros is None else zeros + 1
        wd = np.zeros(w.shape[:2] + ((size or (k - 1) * step + 1),) * 2, np.float32)
        wd[..., :(k - 1) * step + 1:step, :(k - 1) * step + 1:step] = w
        return wd

    mistakes = [(N_("insert rate - 1 zeros between taps: a k x k kernel becomes (k - 1) rate + 1 wide"),
                 lambda x, w, rate, padding=0: conv2d(x, dilated(w, rate, zeros=rate), padding=padding)),
                (N_("the dilated kernel ends at its last tap: (k - 1) rate + 1 wide, with no zeros after "
                    "it (k rate would shift and shrink the output)"),
                 lambda x, w, rate, padding=0: conv2d(x, dilated(w, rate, size=w.shape[-1] * rate),
                                                      padding=padding)),
                (N_("dilate the kernel, not the input"), lambda x, w, rate, padding=0: conv2d(
                    np.pad(dilate_kernel(x, rate), ((0, 0), (padding,) * 2, (padding,) * 2)), w)),
                (N_("use the padding you are given: padding = rate is only the size-keeping choice"),
                 lambda x, w, rate, padding=0: conv2d(x, dilated(w, rate), padding=rate)),
                (N_("pass the padding on to the convolution (the check's cases use several)"),
                 lambda x, w, rate, padding=0: conv2d(x, dilated(w, rate))),
                (N_("a CNN's convolution does not flip the kernel (Paddle's conv2d is a cross-correlation)"),
                 lambda x, w, rate, padding=0: conv2d(x, dilated(w[..., ::-1, ::-1], rate), padding=padding))]
    return run_check("check_atrous_conv", fn, cases,
                     N_("build the dilated kernel (rate - 1 zeros between neighbouring taps, in both "
                        "directions), then run an ordinary convolution with the given padding"),
                     mistakes, verbose=verbose)


@check("day4_deeplab")
def check_aspp_sum(fn, verbose=True):
    """``fn(x, weights, biases, rates)``: DeepLab V2's ASPP: the sum over branches of the
    3x3 conv with ``weights[i]``, ``biases[i]``, dilation and padding ``rates[i]``
    (paddle Tensors in and out; the output has the input's H, W).

    """

    rng = _rng(12)
    cases = []
    for n, c, k, hw, rates in [(1, 2, 3, (9, 9), (1, 2)), (2, 4, 5, (13, 11), (6, 12, 18, 24)),
                               (1, 3, 2, (7, 16), (2, 3, 5)), (1, 2, 3, (6, 5), (4,))]:
        paddle.seed(int(rng.integers(1000)))
        m = ASPPSum(c, k, rates)
        for b in m.branches:               # Paddle starts biases at zero: make them count
            b.bias.set_value(rng.standard_normal(b.bias.shape).astype(np.float32))
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        desc = _("N={n}, C={c}, {k} classes, {hw}, rates {rates}").format(n=n, c=c, k=k, hw=hw, rates=rates)
        cases.append(Case(desc,
                          (x, [b.weight for b in m.branches], [b.bias for b in m.branches], list(rates)),
                          expected=m(x).numpy()))

    def variant(x, ws, bs, rates, dil=True, pad=True, bias=True, fuse=paddle.add_n):
        return fuse([F.conv2d(x, w, b if bias else None, padding=r if pad else 1, dilation=r if dil else 1)
                     for w, b, r in zip(ws, bs, rates)])

    mistakes = [(N_("each branch needs dilation = its rate (and padding = rate to keep H, W)"),
                 lambda x, w, b, r: variant(x, w, b, r, dil=False)),
                (N_("padding must equal the rate so that every branch keeps the size H x W"),
                 lambda x, w, b, r: variant(x, w, b, r, pad=False)),
                (N_("every branch adds its own bias to its class scores"),
                 lambda x, w, b, r: variant(x, w, b, r, bias=False)),
                (N_("V2 sums the branches, it does not average them"),
                 lambda x, w, b, r: variant(x, w, b, r) / len(r)),
                (N_("V2 sums the branches: taking the maximum is V2's fusion of scales (MSC), not of rates"),
                 lambda x, w, b, r: variant(x, w, b, r, fuse=lambda t: paddle.max(paddle.stack(t), 0))),
                (N_("every branch uses its own weights, bias and rate, together (zip the three lists)"),
                 lambda x, w, b, r: variant(x, w[:1] * len(r), b[:1] * len(r), r))]
    return run_check("check_aspp_sum", fn, cases,
                     N_("one 3x3 convolution per branch, with that branch's weights, bias and rate as "
                        "both dilation and padding; the branches' class scores are added"),
                     mistakes, verbose=verbose)


@check("day4_deeplab")
def check_aspp_concat(fn, verbose=True):
    """``fn(x, branches, pool_branch, project)``: DeepLab V3's ASPP. ``branches`` (1x1 and
    atrous 3x3 conv+BN+ReLU) run on x; ``pool_branch`` (1x1 conv+BN+ReLU) runs on the global
    average of x and is broadcast back to (H, W); all are concatenated along channels in
    that order (image pooling last) and ``project`` (1x1) fuses them.

    """

    rng = _rng(13)
    cases = []
    for n, c, o, hw, rates in [(1, 4, 3, (8, 8), (2, 4)), (2, 6, 4, (9, 13), (6, 12, 18)), (1, 3, 2, (5, 7), (1,))]:
        paddle.seed(int(rng.integers(1000)))
        m = ASPPConcat(c, o, rates)
        for layer in m.sublayers():
            if isinstance(layer, paddle.nn.BatchNorm2D):     # BN statistics and shifts that matter
                layer._mean.set_value(rng.standard_normal(layer._mean.shape).astype(np.float32) * 0.2)
                layer.bias.set_value(rng.standard_normal(layer.bias.shape).astype(np.float32) * 0.5)
        m.eval()
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        pool = m.branches[-1][1]
        desc = _("N={n}, C={c}->{o}, {hw}, rates {rates}").format(n=n, c=c, o=o, hw=hw, rates=rates)
        cases.append(Case(desc,
                          (x, list(m.branches[:-1]), pool, m.project), expected=m(x).numpy()))

    def variant(x, branches, pool, project, order="last", how="avg", pool_after=False, reverse=False):
        outs = [b(x) for b in (branches[::-1] if reverse else branches)]
        if pool_after:                      # the branch on every pixel, then the average
            g = pool(x).mean(axis=[2, 3], keepdim=True)
        else:
            g = pool(F.adaptive_avg_pool2d(x, 1) if how == "avg" else F.adaptive_max_pool2d(x, 1))
        g = g.expand([-1, -1, x.shape[2], x.shape[3]])
        outs = outs + [g] if order == "last" else [g] + outs
        return project(paddle.concat(outs, 1))

    mistakes = [(N_("the image-pooling branch goes last in the concatenation (order matters: the "
                    "projection's weights expect it there)"), lambda *a: variant(*a, order="first")),
                (N_("keep the branches in the order given (1x1 first, then the rates): the projection's "
                    "weights expect them there"), lambda *a: variant(*a, reverse=True)),
                (N_("image pooling is a global *average*"), lambda *a: variant(*a, how="max")),
                (N_("average first, then run pool_branch on the (N, C, 1, 1) mean: its ReLU does not "
                    "commute with the average"), lambda *a: variant(*a, pool_after=True))]
    return run_check("check_aspp_concat", fn, cases,
                     N_("run every branch on x; average x over H and W, run pool_branch on that, repeat "
                        "it over H x W; concatenate the branches' maps and the pooled one (last) along "
                        "the channels and project"), mistakes, verbose=verbose)


def _crf_kernel(image, w_app=10.0, theta_alpha=40.0, theta_beta=13.0, w_smooth=3.0, theta_gamma=3.0):
    f_app, f_smooth = crf._features(image, theta_alpha, theta_beta, theta_gamma)
    return (w_app * crf._normalise(crf._gauss_matrix(f_app))
            + w_smooth * crf._normalise(crf._gauss_matrix(f_smooth)))


@check("day4_deeplab")
def check_meanfield_step(fn, verbose=True):
    """``fn(q, unary, kernel)``: one mean-field update of the dense CRF. q (K, N) current
    label probabilities, unary (K, N) = -log P, kernel (N, N) the weighted pairwise kernel
    (Potts compatibility) -> new q (K, N) = softmax over labels of (-unary + q @ kernel.T).

    """

    rng = _rng(14)
    cases = []
    for k, (h, w) in [(2, (3, 4)), (3, (6, 5)), (4, (9, 8))]:
        logits = rng.standard_normal((k, h, w)) * 2
        probs = _softmax(logits).astype(np.float32)
        image = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        unary = _unary(probs).reshape(k, -1)
        kernel = _crf_kernel(image)
        q0 = _softmax(-unary)
        cases.append(Case(_("{k} labels, {h}x{w} image, from the unary").format(k=k, h=h, w=w), (q0, unary, kernel),
                          expected=dense_crf_exact(probs, image, iters=1).reshape(k, -1)))
        q1 = _softmax(rng.standard_normal((k, h * w)))
        cases.append(Case(_("{k} labels, {h}x{w} image, from a random q").format(k=k, h=h, w=w), (q1, unary, kernel),
                          expected=_softmax(-unary + q1 @ kernel.T)))
    asym = rng.random((12, 12)) * (rng.random((12, 12)) < 0.5)      # j pulls i != i pulls j
    q2, u2 = _softmax(rng.standard_normal((3, 12))), rng.random((3, 12))
    cases.append(Case(N_("3 labels, 12 pixels, an asymmetric kernel"), (q2, u2, asym),
                      expected=_softmax(-u2 + q2 @ asym.T)))

    mistakes = [(N_("the message pulls towards the neighbours' labels: add it to -unary; subtracting "
                    "it pushes away"), lambda q, u, k: _softmax(-u - q @ k.T)),
                (N_("normalise over the labels (one distribution per pixel), not over the pixels"),
                 lambda q, u, k: _softmax(-u + q @ k.T, axis=1)),
                (N_("the unary is an energy (-log P): it enters with a minus sign"),
                 lambda q, u, k: _softmax(u + q @ k.T)),
                (N_("keep the unary: the new q weighs the network's own belief and the neighbours' pull"),
                 lambda q, u, k: _softmax(q @ k.T)),
                (N_("kernel[i, j] is the pull of pixel j on pixel i: pixel i's message sums row i of the "
                    "kernel against the neighbours' probabilities"), lambda q, u, k: _softmax(-u + q @ k)),
                (N_("the messages come from the q you are given (the current estimate), not from a "
                    "fresh start at softmax(-unary)"), lambda q, u, k: _softmax(-u + _softmax(-u) @ k.T)),
                (N_("the result is a probability per pixel: exponentiate and divide by the sum over the "
                    "labels"), lambda q, u, k: np.exp(-u + q @ k.T))]
    return run_check("check_meanfield_step", fn, cases,
                     N_("each pixel's message is the kernel-weighted sum of the other pixels' current "
                        "probabilities, label by label; add it to minus the unary and take a softmax "
                        "over the labels (subtract the largest value first, for stability)"),
                     mistakes, verbose=verbose)
