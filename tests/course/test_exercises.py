"""Homework: every check passes the instructor's solutions, catches planted mistakes with a
useful hint, reports 'not done yet' for stubs; the student release leaks no solution and
runs end to end; the check-in collects the results."""
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from common.course import exercises as ex
from common import ops
from common.course import student
from common.data import LABEL_DIVISOR
from common.course.exercises.day3 import _valid_output
from common.ops.boxes import box_iou as _box_iou_paddle
from common.models.panoptic_deeplab import group_pixels as _group_ref

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(ROOT.glob("day*/exercises.ipynb"))


def _solutions(day):
    """Namespace after running the setup cell and every solution cell of a day's notebook."""
    nb = nbformat.read(ROOT / day / "exercises.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    ns = {}
    exec(code[0].replace("runtime.setup()", "runtime.setup(verbose=False)"), ns)
    for src in code:
        if student.BEGIN in src:
            exec(src, ns)
    checks = [src for src in code if re.search(r"^ex\.check_\w+\(", src, re.M)]
    return ns, checks


def test_every_day_has_its_notebook_and_checks():
    assert [p.parent.name for p in NOTEBOOKS] == sorted(ex.DAYS)
    for p in NOTEBOOKS:
        text = p.read_text()
        for name in ex.DAYS[p.parent.name]:
            assert f"ex.{name}(" in text, f"{p} never calls {name}"
        nb = nbformat.read(p, as_version=4)
        assert nb.metadata.kernelspec.name == "python3"
        assert "common.runtime" in nb.cells[1].source or "runtime.setup()" in nb.cells[1].source
        assert sum(student.ANSWER_BEGIN in c.source for c in nb.cells) >= 2, f"{p}: open questions"
        outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
        assert "/work/" not in outputs and "/home/" not in outputs and '"error"' not in outputs
        counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
        assert counts == list(range(1, len(counts) + 1)), f"{p} was not run top to bottom"


@pytest.mark.parametrize("day", sorted(ex.DAYS))
def test_instructor_solutions_pass(day, capsys):
    ns, checks = _solutions(day)
    ex.reset()
    for src in checks:
        exec(src, ns)
    got = {r["name"]: r["status"] for r in ex.results()}
    assert got == {name: "passed" for name in ex.DAYS[day]}, capsys.readouterr().out


# ----------------------------------------------------------------- planted mistakes
# Days 1 and 2: each planted mistake is written here independently of the checks' own models.
def _conf(pred, label, k, ignore_index=255, transpose=False, count_ignored=False, wide=True, ignore=None):
    ignore = ignore_index if ignore is None else ignore
    keep = np.ones(label.shape, bool) if count_ignored else label != ignore
    lab, prd = label[keep], pred[keep]
    if count_ignored:
        lab = np.minimum(lab, k - 1)                 # 255 clipped into the last class
    if wide:
        lab, prd = lab.astype(np.int64), prd.astype(np.int64)
    a, b = (prd, lab) if transpose else (lab, prd)
    return np.bincount((a * k + b).ravel(), minlength=k * k)[:k * k].reshape(k, k)


def _conf_no_minlength(pred, label, k, ignore_index=255):
    keep = label != ignore_index
    return np.bincount(label[keep].astype(np.int64) * k + pred[keep]).reshape(k, k)


def _scores(conf, nan=True, recall=True, union="tp_once", absent=np.nan, pooled=False, acc_nan=True):
    conf = np.asarray(conf, float)
    tp, gt, pr = np.diag(conf), conf.sum(1), conf.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = {"tp_once": gt + pr - tp, "tp_twice": gt + pr, "dice": (gt + pr) / 2}[union]
        iou = tp / den
        acc = tp / (gt if recall else pr) if acc_nan else tp / np.maximum(gt, 1)
    iou = np.where(np.isnan(iou), absent, iou)
    mean = np.nanmean if nan else (lambda a: np.mean(np.nan_to_num(a)))
    miou = tp.sum() / (gt + pr - tp).sum() if pooled else mean(iou)
    return dict(iou=iou, miou=miou, acc=acc, macc=mean(acc))


def _step(model, opt, x, y, clear=True, ignore=True, step=True, train=True, as_float=True):
    if train:
        model.train()
    loss = F.cross_entropy(model(x), y, axis=1, ignore_index=255 if ignore else -100)
    loss.backward()
    if step:
        opt.step()
    if clear:
        opt.clear_grad()
    return float(loss) if as_float else loss


def _step_ignore_as_background(model, opt, x, y):
    return _step(model, opt, x, paddle.where(y == 255, paddle.zeros_like(y), y))


def _bilinear(x, size, align_corners=False, clamp=True, flip=False, one_is_centre=False, int_ratio=False):
    ac = (not align_corners) if flip else align_corners

    def coords(n_out, n_in):
        d = np.arange(n_out)
        ratio = (n_in // n_out if int_ratio else n_in / n_out)
        if ac:
            src = d * (n_in - 1) / max(n_out - 1, 1)
        else:
            src = (d + 0.5) * (ratio if n_out > 1 or one_is_centre else 0) - 0.5
        src = np.maximum(src, 0) if clamp else src
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0
    j0, j1, tx = coords(size[1], x.shape[1])
    r = x[:, j0] * (1 - tx) + x[:, j1] * tx
    i0, i1, ty = coords(size[0], x.shape[0])
    return r[i0] * (1 - ty[:, None]) + r[i1] * ty[:, None]


def _unpool(x, idx, size, use_h=False, one_plane=False, doubled=False):
    c = x.shape[0]
    h, w = (2 * x.shape[1], 2 * x.shape[2]) if doubled else size
    if use_h:
        idx = (idx // h) * w + idx % h
    if one_plane:
        out = np.zeros(c * h * w, np.float32)
        out[idx.ravel()] = x.ravel()
        return out.reshape(c, h, w)
    out = np.zeros((c, h * w), np.float32)
    np.put_along_axis(out, idx.reshape(c, -1), x.reshape(c, -1), axis=1)
    return out.reshape(c, h, w)


def _tconv(x, w, stride=1, padding=0, rotate=True, pad_fix=True, swap=True, flip_rows_only=False):
    k = w.shape[-1]
    z = ops.zero_insert(x, stride)
    p = k - 1 - (padding if pad_fix else 0)
    z = np.pad(z, ((0, 0), (p, p), (p, p))) if p >= 0 else z[:, -p:p, -p:p]
    wr = w.transpose(1, 0, 2, 3) if swap else w
    if flip_rows_only:
        return ops.conv2d(z, wr[:, :, ::-1, :])
    return ops.conv2d(z, wr[:, :, ::-1, ::-1] if rotate else wr)


def _tconv_no_crop(x, w, stride=1, padding=0):
    z = np.pad(ops.zero_insert(x, stride), ((0, 0),) + ((w.shape[-1] - 1 - padding,) * 2,) * 2)
    return ops.conv2d(z, w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1])


def _fuse(coarse, skip, up2, crop="top_left", add=True, interpolate=False):
    h, w = skip.shape[-2:]
    up = F.interpolate(coarse, scale_factor=2, mode="bilinear") if interpolate else up2(coarse)
    dh, dw = up.shape[-2] - h, up.shape[-1] - w
    top, left = {"top_left": (0, 0), "centre": (dh // 2, dw // 2), "bottom_right": (dh, dw)}[crop]
    up = up[:, :, top:top + h, left:left + w]
    return up + skip if add else paddle.concat([up, skip], 1)


def _fcn_logits(model, x, crop=True, pad="bottom_right", final_interp=False, softmax=False, skips=True):
    h, w = x.shape[-2:]
    ph, pw = -h % 32, -w % 32
    x = F.pad(x, [0, pw, 0, ph] if pad == "bottom_right" else [pw, 0, ph, 0])
    f = model.backbone(x)
    s = model.score_fr(f[5])
    if skips and model.stride <= 16:
        s = _fuse(s, model.score_pool4(f[3]), model.up2_fr)
    if skips and model.stride == 8:
        s = _fuse(s, model.score_pool3(f[2]), model.up2_pool4)
    s = F.interpolate(s, scale_factor=model.stride, mode="bilinear") if final_interp else model.up_final(s)
    s = s[:, :, :h, :w] if crop else s
    return F.softmax(s, axis=1) if softmax else s


def _crop_concat(skip, x, shift=0, order="skip"):
    h, w = x.shape[-2:]
    top, left = (skip.shape[-2] - h + shift) // 2, (skip.shape[-1] - w + shift) // 2
    crop = skip[:, :, top:top + h, left:left + w]
    return np.concatenate([crop, x] if order == "skip" else [x, crop], 1)


def _rf(layers, dilation=True, jump_after=True, span_dk=False):
    rf, jump = 1, 1
    for k, s, d in layers:
        d = d if dilation else 1
        if not jump_after:
            jump *= s
        rf += (d * k - 1 if span_dk else d * (k - 1)) * jump
        if jump_after:
            jump *= s
    return rf


def _psp(x, bins, stages, ac=False, mode="bilinear"):
    outs = [x]
    for b, st in zip(bins, stages):
        y = st(F.adaptive_avg_pool2d(x, b))
        outs.append(F.interpolate(y, size=x.shape[-2:], mode=mode,
                                  **({"align_corners": ac} if mode == "bilinear" else {})))
    return paddle.concat(outs, 1)


def _atrous(x, w, rate, padding=0, zeros=None):
    z = rate - 1 if zeros is None else zeros
    k = w.shape[-1]
    wd = np.zeros(w.shape[:2] + ((k - 1) * (z + 1) + 1,) * 2, np.float32)
    wd[..., ::z + 1, ::z + 1] = w
    return ops.conv2d(x, wd, padding=padding)


def _tile(out, depth=4, per_level=4, depth_used=None, margin_of_request=False):
    d = depth if depth_used is None else depth_used
    n = out
    while _valid_output(n, d, per_level) is None or _valid_output(n, d, per_level) < out:
        n += 1
    return n, (n - (out if margin_of_request else _valid_output(n, d, per_level))) // 2


def _interval(layers, lo, hi, forward=False, up_as_conv=False, padding=True, floor_first=False):
    for kind, k, s, d, p in (layers if forward else layers[::-1]):
        p = p if padding else 0
        if kind == "up" and not up_as_conv:
            first = lo + p - k + 1
            lo, hi = (first // s if floor_first else -(-first // s)), (hi + p) // s
        else:
            lo, hi = lo * s - p, hi * s - p + d * (k - 1)
    return lo, hi


def _aspp_sum(x, ws, bs, rs, bias=True, pad=True):
    return paddle.add_n([F.conv2d(x, w, b if bias else None, padding=r if pad else 1, dilation=r)
                         for w, b, r in zip(ws, bs, rs)])


def _aspp_concat(x, br, pool, proj, first=False, how="avg", pool_after=False):
    g = (pool(x).mean(axis=[2, 3], keepdim=True) if pool_after else
         pool(F.adaptive_avg_pool2d(x, 1) if how == "avg" else F.adaptive_max_pool2d(x, 1)))
    g = g.expand([-1, -1, x.shape[2], x.shape[3]])
    outs = [b(x) for b in br]
    return proj(paddle.concat([g] + outs if first else outs + [g], 1))


def _tile_closed_form(out_size, depth=4):
    """Day 3: the valid U-Net's output is 2^d b - 4 (2^d - 1) for a bottom side b, and the
    network loses 6 * 2^d - 4 pixels per side, whatever b."""
    b = -(-(out_size + 4 * (2 ** depth - 1)) // 2 ** depth)
    while 2 ** depth * b - 4 * (2 ** depth - 1) < 1:
        b += 1
    out = 2 ** depth * b - 4 * (2 ** depth - 1)
    return out + 2 * (6 * 2 ** depth - 4), 6 * 2 ** depth - 4


def _interval_by_sets(layers, lo, hi):
    """Day 3: the explicit set of inputs of every unit, layer by layer from the top."""
    units = set(range(lo, hi + 1))
    for kind, k, s, d, p in layers[::-1]:
        if kind == "up":        # output o = i s + t - p for tap t: the inputs painting o
            units = {i for o in units for i in range((o + p) // s - k, (o + p) // s + 1) if 0 <= o + p - i * s < k}
        else:
            units = {o * s - p + t * d for o in units for t in range(k)}
    return min(units), max(units)


def _atrous_by_shifts(x, w, rate, padding=0):
    """Day 4: sum of the input shifted by each tap's offset, times that tap."""
    c_out, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    h, wd = xp.shape[1] - rate * (k - 1), xp.shape[2] - rate * (k - 1)
    out = np.zeros((c_out, h, wd), np.float64)
    for i in range(k):
        for j in range(k):
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], xp[:, i * rate:i * rate + h, j * rate:j * rate + wd])
    return out


def _rf_from_the_top(layers):
    """Day 3: from one unit of the last layer down: a layer below multiplies the field by its
    stride and adds its span."""
    rf = 1
    for k, s, d in layers[::-1]:
        rf = (rf - 1) * s + d * (k - 1) + 1
    return rf


def _meanfield_potts(q, unary, kernel):
    """Day 4: the Potts energy as written, u + sum_j k_ij [l != l_j] in expectation."""
    e = unary + (1 - q) @ kernel.T
    p = np.exp(-(e - e.min(0, keepdims=True)))
    return p / p.sum(0, keepdims=True)


# Days 3 and 4: correct solutions written another way than the notebooks' must pass.
ALTERNATIVES_DAYS_3_4 = {
    "check_crop_concat": lambda skip, x: np.concatenate(
        (skip[..., (skip.shape[-2] - x.shape[-2]) // 2:, :][..., :x.shape[-2], :]
         [..., (skip.shape[-1] - x.shape[-1]) // 2:][..., :x.shape[-1]], x), axis=-3),
    "check_valid_tile": _tile_closed_form,
    "check_receptive_field": _rf_from_the_top,
    "check_receptive_interval": _interval_by_sets,
    "check_psp_module": lambda x, bins, stages: paddle.concat(
        [x] + [paddle.nn.Upsample(size=x.shape[-2:], mode="bilinear", align_corners=False)(
            st(paddle.nn.AdaptiveAvgPool2D(b)(x))) for b, st in zip(bins, stages)], axis=1),
    "check_atrous_conv": _atrous_by_shifts,
    "check_aspp_sum": lambda x, ws, bs, rs: sum(F.conv2d(x, w, b, padding=r, dilation=r)
                                                for w, b, r in zip(ws, bs, rs)),
    "check_aspp_concat": lambda x, br, pool, proj: proj(paddle.concat(
        [b(x) for b in br] + [F.interpolate(pool(x.mean(axis=[2, 3], keepdim=True)), size=x.shape[-2:],
                                            mode="bilinear")], axis=1)),
    "check_meanfield_step": _meanfield_potts,
}


def _softmax(e, axis=0):
    e = np.exp(e - e.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _gcu(x, w, s, axis=1, norm=True, half=0.5, power=1, stable=True):
    diff = (x[:, :, None] - w[None]) / s[None] ** power
    logit = -half * (((x[:, :, None] - w[None]) / s[None]) ** 2).sum(1)
    if stable:
        q = _softmax(logit, axis=axis)
    else:
        with np.errstate(all="ignore"):
            q = np.exp(logit) / np.exp(logit).sum(axis, keepdims=True)
    z = (q[:, None, :] * diff).sum(0).T / q.sum(0)[:, None]
    return q, (z / np.linalg.norm(z, axis=1, keepdims=True) if norm else z)


def _graph_conv(v, a, w, relu=True, sign=-1.0, transpose=False, identity=True, relu_last=False):
    v, a, w = (np.asarray(t.numpy(), np.float64) for t in (v, a, w))
    h = (v if identity else 0) + sign * np.einsum("kj,njs->nks", a.T if transpose else a, v)
    z = (np.maximum(h, 0) if relu and not relu_last else h) @ w
    return np.maximum(z, 0) if relu and relu_last else z


def _glore(x, unit, divide=True, residual=True, transpose=True, bn=True):
    n, c, h, w = x.shape
    s = unit.state(x).reshape([n, -1, h * w])
    b = unit.proj(x).reshape([n, -1, h * w])
    v = paddle.matmul(b, s, transpose_y=True) / (h * w if divide else 1)
    y = paddle.matmul(b, unit.gcn(v), transpose_x=True)
    y = (y.transpose([0, 2, 1]) if transpose else y).reshape([n, -1, h, w])
    out = unit.extend(y)
    out = unit.bn(out) if bn else out
    return x + out if residual else out


def _gi(p, s, u, axis=-1, scale=True, fresh=True, residual=True):
    def attend(q, k, v):
        logits = paddle.matmul(q, k, transpose_y=True) / (q.shape[-1] ** 0.5 if scale else 1.0)
        return paddle.matmul(F.softmax(logits, axis=axis), v)
    p_o = u.gcn_v((p if residual else 0) + attend(p, s, u.s2v(s)))
    src = p_o if fresh else p
    return p_o, u.gcn_s((s if residual else 0) + attend(s, src, u.v2s(src)))


def _iou(a, b, clip=True, plus=0.0):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = rb - lt + plus
    wh = np.clip(wh, 0, None) if clip else wh
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: (x[:, 2] - x[:, 0] + plus) * (x[:, 3] - x[:, 1] + plus)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def _nms(boxes, scores, thr, suppress=True, sort=True, strict=True):
    order = np.argsort(-scores, kind="stable") if sort else np.arange(len(boxes))
    keep = []
    while order.size:
        i, order = order[0], order[1:]
        keep.append(int(i))
        if order.size and suppress:
            iou = _iou(boxes[i:i + 1], boxes[order])[0]
            order = order[iou <= thr] if strict else order[iou < thr]
    return np.array(keep, np.int64)


def _nms_from_all(boxes, scores, thr):
    """Suppressed boxes still suppress others."""
    iou = _iou(boxes, boxes)
    order = np.argsort(-scores, kind="stable")
    return np.array([i for i in order if not ((iou[i] > thr) & (scores > scores[i])).any()], np.int64)


def _roi(feat, box, out, sampling_ratio=2, offset=0.5, clamp=True, rounded=False, corners=False,
         zero_beyond=True):
    c, h, w = feat.shape
    ph, pw = (out, out) if np.isscalar(out) else out
    box = np.round(np.asarray(box, float)) if rounded else np.asarray(box, float)
    x0, y0, x1, y1 = box - offset
    sr = sampling_ratio
    sub = np.arange(sr) / sr if corners else (np.arange(sr) + 0.5) / sr
    ys = (y0 + (np.arange(ph)[:, None] + sub) * (y1 - y0) / ph).ravel()
    xs = (x0 + (np.arange(pw)[:, None] + sub) * (x1 - x0) / pw).ravel()

    def axis(v, n):
        valid = ((v >= -1) & (v <= n)) | (not zero_beyond)
        if clamp:
            v = np.clip(v, 0, n - 1)
        lo = np.floor(v).astype(int)
        lo_c, hi_c = np.clip(lo, 0, n - 1), np.clip(lo + 1, 0, n - 1)
        inside_lo = (lo >= 0) & (lo <= n - 1)
        inside_hi = (lo + 1 >= 0) & (lo + 1 <= n - 1)
        return lo_c, hi_c, v - lo, valid, inside_lo | clamp, inside_hi | clamp

    yl, yh, fy, vy, yli, yhi = axis(ys, h)
    xl, xh, fx, vx, xli, xhi = axis(xs, w)
    g = lambda yi, xi, my, mx: feat[:, yi][:, :, xi] * (my[:, None] & mx[None])  # noqa: E731
    top = g(yl, xl, yli, xli) * (1 - fx) + g(yl, xh, yli, xhi) * fx
    bot = g(yh, xl, yhi, xli) * (1 - fx) + g(yh, xh, yhi, xhi) * fx
    val = (top * (1 - fy)[:, None] + bot * fy[:, None]) * (vy[:, None] & vx[None])
    return val.reshape(c, ph, sr, pw, sr).mean((2, 4))


def _pq(pred, target, things, stuffs, thresh=0.5, strict=True, stuff_ids=True, category=True, over="occur",
        half=0.5, sq_all=False, pooled=False):
    def seg(m):
        cat = m // LABEL_DIVISOR
        return np.where(np.isin(cat, things) | (not stuff_ids), m, cat * LABEL_DIVISOR).ravel()
    p_ids, pi = np.unique(seg(pred), return_inverse=True)
    t_ids, ti = np.unique(seg(target), return_inverse=True)
    inter = np.bincount(ti * len(p_ids) + pi, minlength=len(t_ids) * len(p_ids)).reshape(len(t_ids), -1)
    iou = inter / (inter.sum(1)[:, None] + inter.sum(0)[None] - inter)
    ok = iou > thresh if strict else iou >= thresh
    if category:
        ok &= t_ids[:, None] // LABEL_DIVISOR == p_ids[None] // LABEL_DIVISOR
    match = ok
    if thresh == 0:                                  # best partner of each target, unique or not
        best = np.where(match, iou, -1).argmax(1)
        match = np.zeros_like(match)
        match[np.arange(len(t_ids)), best] = (np.where(ok, iou, 0).max(1) > 0)
    t_cat, p_cat = t_ids // LABEL_DIVISOR, p_ids // LABEL_DIVISOR
    counts = {}
    for c in list(things) + list(stuffs):            # a match counts for the target's category
        m = match[t_cat == c]
        tp = int(m.sum())
        fn = int((t_cat == c).sum() - m.any(1).sum())
        fp = int((p_cat == c).sum() - match[:, p_cat == c].any(0).sum())
        counts[c] = (tp, fp, fn, float(iou[t_cat == c][m].sum()))
    if pooled:
        tp, fp, fn, s_iou = (sum(v[i] for v in counts.values()) for i in range(4))
        sq, rq = (s_iou / tp if tp else 0.0), tp / (tp + half * (fp + fn))
        return dict(pq=sq * rq, sq=sq, rq=rq)
    rows = []
    for c, (tp, fp, fn, s_iou) in counts.items():
        occurs = tp + fp + fn > 0
        if over == "all" or (over == "target" and c in set(t_cat)) or (over == "occur" and occurs):
            if not occurs:
                rows.append((0.0, 0.0, 0.0))
                continue
            sq = s_iou / ((tp + fp + fn) if sq_all else tp) if tp else 0.0
            rq = tp / (tp + half * (fp + fn))
            rows.append((sq * rq, sq, rq))
    pq, sq, rq = np.mean(rows, 0)
    return dict(pq=pq, sq=sq, rq=rq)


def _link(pm, pl, m, lab, iou_thresh=0.1, greedy=False, gate=True, negate=True, strict=False):
    out = np.full(len(m), -1, np.int64)
    if not len(pm) or not len(m):
        return out
    a = np.asarray(pm, bool).reshape(len(pm), -1).astype(float)
    b = np.asarray(m, bool).reshape(len(m), -1).astype(float)
    inter = a @ b.T
    iou = inter / (a.sum(1)[:, None] + b.sum(1)[None] - inter)
    if gate:
        iou = iou * (np.asarray(pl)[:, None] == np.asarray(lab)[None])
    if greedy:
        pairs, used_r, used_c = [], set(), set()
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            r, c = divmod(int(flat), iou.shape[1])
            if r not in used_r and c not in used_c:
                pairs.append((r, c))
                used_r.add(r)
                used_c.add(c)
    else:
        from scipy.optimize import linear_sum_assignment
        pairs = zip(*linear_sum_assignment(-iou if negate else iou))
    for r, c in pairs:
        if (iou[r, c] > iou_thresh) if strict else (iou[r, c] >= iou_thresh):
            out[c] = r
    return out


PLANTED = {
    "check_confusion_matrix": [
        (lambda p, l, k, ignore_index=255: _conf(p, l, k, ignore_index, transpose=True), "transpose"),
        (lambda p, l, k, ignore_index=255: _conf(np.asarray(p), np.where(l == ignore_index, 0, l), k, ignore_index),
         "must not be counted"),
        (lambda p, l, k, ignore_index=255: _conf(p, l, k, ignore_index, count_ignored=True), "leave out the pixels"),
        (lambda p, l, k, ignore_index=255: _conf(p, l, k, ignore_index, ignore=255), "ignore_index argument"),
        (lambda p, l, k, ignore_index=255: _conf(p, l, k, ignore_index, wide=False), "wraps around at 256"),
        (_conf_no_minlength, "K x K even when a class never occurs")],
    "check_miou": [(lambda c: _scores(c, nan=False), "NaN"), (lambda c: _scores(c, recall=False), "recall"),
                   (lambda c: _scores(c, union="tp_twice"), "counts each pixel once"),
                   (lambda c: _scores(c, union="dice"), "Dice"),
                   (lambda c: _scores(c, absent=1.0), "not 1"),
                   (lambda c: _scores(c, pooled=True), "mean of the per-class IoUs"),
                   (lambda c: _scores(c, acc_nan=False), "0/0 = NaN")],
    "check_train_step": [(lambda m, o, x, y: _step(m, o, x, y, clear=False), "clear"),
                         (lambda m, o, x, y: _step(m, o, x, y, step=False), "step()"),
                         (_step_ignore_as_background, "skip them"),
                         (lambda m, o, x, y: _step(m, o, x, y, train=False), "training mode"),
                         (lambda m, o, x, y: _step(m, o, x, y, as_float=False), "Python float")],
    "check_bilinear_resize": [(lambda x, s, align_corners=False: _bilinear(x, s, align_corners, flip=True),
                               "align_corners"),
                              (lambda x, s, align_corners=False: _bilinear(x, s, align_corners, clamp=False), "clamp"),
                              (lambda x, s, align_corners=False: _bilinear(x, s[::-1], align_corners), "rows first"),
                              (lambda x, s, align_corners=False: _bilinear(x, s, align_corners, one_is_centre=True),
                               "output side of length 1"),
                              (lambda x, s, align_corners=False: _bilinear(x, s, align_corners, int_ratio=True), None)],
    "check_max_unpool": [(lambda x, i, s: _unpool(x, i, s, use_h=True), "row * W + col"),
                         (lambda x, i, s: _unpool(x, i, s)[:, ::-1], None),
                         (lambda x, i, s: _unpool(x, i, s, one_plane=True), "own plane"),
                         (lambda x, i, s: _unpool(x, i, s, doubled=True), "output_size you are given")],
    "check_transposed_conv": [(lambda x, w, stride=1, padding=0: _tconv(x, w, stride, padding, rotate=False),
                               "rotate"),
                              (lambda x, w, stride=1, padding=0: _tconv(x, w, stride, padding, pad_fix=False),
                               "k - 1 - padding"),
                              (lambda x, w, stride=1, padding=0: _tconv(x, w, stride, padding, swap=False), None),
                              (lambda x, w, stride=1, padding=0: _tconv(x, w, stride, padding, flip_rows_only=True),
                               "both axes"),
                              (_tconv_no_crop, "negative amount means cutting")],
    "check_fc_to_conv": [(lambda wt, s: wt.reshape(wt.shape[1], *s), "transpose"),
                         (lambda wt, s: wt.T.reshape(wt.shape[1], s[1], s[2], s[0]).transpose(0, 3, 1, 2),
                          "C slowest"),
                         (lambda wt, s: wt.T.reshape(wt.shape[1], s[0], s[2], s[1]).transpose(0, 1, 3, 2),
                          "row by row")],
    "check_fcn_fuse": [(lambda c, s, up: _fuse(c, s, up, interpolate=True), "given"),
                       (lambda c, s, up: _fuse(c, s, up, add=False), "adds the two score maps"),
                       (lambda c, s, up: _fuse(c, s, up) - s, "skip is missing"),
                       (lambda c, s, up: _fuse(c, s, up, crop="bottom_right"), "at the top left"),
                       (lambda c, s, up: _fuse(c, s, up, crop="centre"), "not from the centre"),
                       (lambda c, s, up: up(c) + s, "first H rows")],
    "check_fcn_logits": [(lambda m, x: _fcn_logits(m, x, crop=False), "crop the logits"),
                         (lambda m, x: _fcn_logits(m, x, pad="top_left"), "bottom and right only"),
                         (lambda m, x: _fcn_logits(m, x, final_interp=True), "final up-sampling layer"),
                         (lambda m, x: _fcn_logits(m, x, softmax=True), "no softmax"),
                         (lambda m, x: _fcn_logits(m, x, skips=False), "pool4"),
                         (lambda m, x: m(x), "model's parts")],
    "check_crop_concat": [(lambda s, x: _crop_concat(s, x, shift=1), "off by one"),
                          (lambda s, x: _crop_concat(s, x, order="x"), "skip's window first"),
                          (lambda s, x: np.concatenate([s[:, :, :x.shape[2], :x.shape[3]], x], 1), "not the top-left"),
                          (lambda s, x: np.concatenate([s[:, :, (s.shape[2] - x.shape[2]) // 2:
                                                          s.shape[2] - (s.shape[2] - x.shape[2]) // 2,
                                                          (s.shape[3] - x.shape[3]) // 2:
                                                          s.shape[3] - (s.shape[3] - x.shape[3]) // 2], x], 1),
                           "exactly h rows")],
    "check_valid_tile": [(lambda o, depth=4: _tile(o, depth, per_level=2), "4 pixels"),
                         (lambda o, depth=4: _tile(o, depth, margin_of_request=True), "what the network loses"),
                         (lambda o, depth=4: _tile(o, depth, depth_used=4), "use the depth"),
                         (lambda o, depth=4: (o + 184, 92), None)],
    "check_receptive_field": [(lambda l: _rf(l, jump_after=False), "after"),
                              (lambda l: _rf(l, dilation=False), "dilated"),
                              (lambda l: _rf(l) - 1, "start the field at 1"),
                              (lambda l: _rf(l, span_dk=True), "not d k")],
    "check_receptive_interval": [(lambda L, a, b: _interval(L, a, b, forward=True), "walk back"),
                                 (lambda L, a, b: _interval(L, a, b, up_as_conv=True), "not a conv"),
                                 (lambda L, a, b: _interval(L, a, b, padding=False), "padding"),
                                 (lambda L, a, b: _interval(L, a, b, floor_first=True), "rounded up"),
                                 (lambda L, a, b: (_interval(L, a, b)[0], _interval(L, a, b)[1] + 1), "inclusive")],
    "check_psp_module": [(lambda x, b, s: _psp(x, b, s, ac=True), "align_corners"),
                         (lambda x, b, s: _psp(x, b, s, mode="nearest"), "bilinearly"),
                         (lambda x, b, s: paddle.concat(list(_psp(x, b, s).split(
                             [x.shape[1]] + [s_[0]._out_channels for s_ in s], axis=1)[1:]), 1), "C -> 2C"),
                         (lambda x, b, s: paddle.concat([F.interpolate(st(F.adaptive_avg_pool2d(x, bb)), x.shape[-2:],
                                                                       mode="bilinear") for bb, st in zip(b, s)]
                                                        + [x], 1), "input comes first")],
    "check_atrous_conv": [(lambda x, w, r, padding=0: _atrous(x, w, r, padding, zeros=r), "rate - 1"),
                          (lambda x, w, r, padding=0: ops.conv2d(x, w, padding=padding), None),
                          (lambda x, w, r, padding=0: _atrous(x, w, r, padding=r), "given"),
                          (lambda x, w, r, padding=0: _atrous(x, w, r), "pass the padding"),
                          (lambda x, w, r, padding=0: _atrous(x, w[..., ::-1, ::-1], r, padding), "flip")],
    "check_aspp_sum": [(lambda x, ws, bs, rs: _aspp_sum(x, ws, bs, rs, pad=False), "both dilation and padding"),
                       (lambda x, ws, bs, rs: _aspp_sum(x, ws, bs, rs) / len(rs), "sums"),
                       (lambda x, ws, bs, rs: _aspp_sum(x, ws, bs, rs, bias=False), "own bias"),
                       (lambda x, ws, bs, rs: _aspp_sum(x, ws, bs, rs, bias=False) + bs[0].reshape([1, -1, 1, 1]),
                        None)],
    "check_aspp_concat": [(lambda *a: _aspp_concat(*a, first=True), "last"),
                          (lambda *a: _aspp_concat(*a, how="max"), "average"),
                          (lambda *a: _aspp_concat(*a, pool_after=True), "commute")],
    "check_meanfield_step": [(lambda q, u, k: _softmax(-u - q @ k.T), "add it"),
                             (lambda q, u, k: _softmax(-u + q @ k.T, axis=1), "labels"),
                             (lambda q, u, k: _softmax(-u + q @ k), None),
                             (lambda q, u, k: _softmax(q @ k.T), "keep the unary"),
                             (lambda q, u, k: np.exp(-u + q @ k.T), "divide by the sum"),
                             (lambda q, u, k: _softmax(-u + _softmax(-u) @ k.T), "current estimate")],
    "check_gcu_projection": [(lambda x, w, s: _gcu(x, w, s, axis=0), "node axis"),
                             (lambda x, w, s: _gcu(x, w, s, norm=False), "L2 norm"),
                             (lambda x, w, s: _gcu(x, w, s, half=1.0), "*half*"),
                             (lambda x, w, s: _gcu(x, w, s, power=2), "not by sigma squared"),
                             (lambda x, w, s: _gcu(x, w, s, stable=False), "stable softmax")],
    "check_graph_conv": [(lambda v, a, w, relu=True: _graph_conv(v, a, w, relu, sign=1.0), "I - A_g"),
                         (lambda v, a, w, relu=True: _graph_conv(v, a, w, relu, identity=False), "own state"),
                         (lambda v, a, w, relu=True: _graph_conv(v, a, w, relu, transpose=True), "row k"),
                         (lambda v, a, w, relu=True: _graph_conv(v, a, w, relu, relu_last=True), "between"),
                         (lambda v, a, w, relu=True: _graph_conv(v, a, w, False), None),
                         (lambda v, a, w, relu=True: _graph_conv(v, a, w, True), "relu=False")],
    "check_glore_unit": [(lambda x, u: _glore(x, u, divide=False), "L = H*W"),
                         (lambda x, u: _glore(x, u, residual=False), "residual"),
                         (lambda x, u: _glore(x, u, transpose=False), "scrambles"),
                         (lambda x, u: _glore(x, u, bn=False), "running statistics")],
    "check_gi_reasoning": [(lambda p, s, u: _gi(p, s, u, axis=1), "last axis"),
                           (lambda p, s, u: _gi(p, s, u, scale=False), "sqrt(D)"),
                           (lambda p, s, u: _gi(p, s, u, fresh=False), "*updated*"),
                           (lambda p, s, u: _gi(p, s, u, residual=False), "residual")],
    "check_box_iou": [(lambda a, b: _iou(a, b, clip=False), "clip"), (lambda a, b: _iou(a, b, plus=1.0), "+ 1"),
                      (lambda a, b: _iou(b, a), "(n, m)")],
    "check_nms": [(lambda b, s, t: _nms(b, s, t, suppress=False), "remove suppressed"),
                  (lambda b, s, t: _nms(b, s, t, sort=False), "highest score"),
                  (lambda b, s, t: _nms(b, s, t, strict=False), "strictly"),
                  (_nms_from_all, "must not suppress"),
                  (lambda b, s, t: np.sort(_nms(b, s, t)), "descending score")],
    "check_roi_align": [(lambda f, b, o, sampling_ratio=2: _roi(f, b, o, sampling_ratio, offset=0.0), "half a pixel"),
                        (lambda f, b, o, sampling_ratio=2: _roi(f, b, o, sampling_ratio, clamp=False), None),
                        (lambda f, b, o, sampling_ratio=2: _roi(f, b, o, sampling_ratio, rounded=True), "round"),
                        (lambda f, b, o, sampling_ratio=2: _roi(f, b, o, sampling_ratio, corners=True), None),
                        (lambda f, b, o, sampling_ratio=2: _roi(f, b, o, sampling_ratio, zero_beyond=False),
                         "reads 0"),
                        (lambda f, b, o, sampling_ratio=2: _roi(f, b, o, sampling_ratio) * sampling_ratio ** 2,
                         "mean")],
    "check_pq": [(lambda p, t, th, st: _pq(p, t, th, st, thresh=0.0), "IoU > 0.5"),
                 (lambda p, t, th, st: _pq(p, t, th, st, strict=False), "strict"),
                 (lambda p, t, th, st: _pq(p, t, th, st, stuff_ids=False), "stuff"),
                 (lambda p, t, th, st: _pq(p, t, th, st, category=False), "same category"),
                 (lambda p, t, th, st: _pq(p, t, th, st, over="target"), "only in the prediction"),
                 (lambda p, t, th, st: _pq(p, t, th, st, over="all"), "absent from both"),
                 (lambda p, t, th, st: _pq(p, t, th, st, half=1.0), "FP/2"),
                 (lambda p, t, th, st: _pq(p, t, th, st, sq_all=True), "matches only"),
                 (lambda p, t, th, st: _pq(p, t, th, st, pooled=True), "per category")],
    "check_grouping": [(lambda c, o, m: _group_ref(c, o[::-1], m).astype(np.int64), "(dy, dx)"),
                       (lambda c, o, m: _group_ref(c, -o, m).astype(np.int64), "add the offset"),
                       (lambda c, o, m: np.where(m, _group_ref(c, o, m) - 1, 0), "start at 1"),
                       (lambda c, o, m: _group_ref(c, o, np.ones_like(m)).astype(np.int64), "thing pixels"),
                       (lambda c, o, m: _group_ref(np.asarray(c)[:, ::-1], o, m).astype(np.int64), "(y, x)")],
    "check_link": [(lambda pm, pl, m, lab, iou_thresh=0.1: _link(pm, pl, m, lab, iou_thresh, greedy=True), "*total*"),
                   (lambda pm, pl, m, lab, iou_thresh=0.1: _link(pm, pl, m, lab, iou_thresh, negate=False),
                    "minimises"),
                   (lambda pm, pl, m, lab, iou_thresh=0.1: _link(pm, pl, m, lab, iou_thresh, gate=False),
                    "same class"),
                   (lambda pm, pl, m, lab, iou_thresh=0.1: _link(pm, pl, m, lab, 0.0), "below iou_thresh"),
                   (lambda pm, pl, m, lab, iou_thresh=0.1: _link(pm, pl, m, lab, iou_thresh, strict=True),
                    "at least"),
                   (lambda pm, pl, m, lab, iou_thresh=0.1: np.maximum(_link(pm, pl, m, lab, iou_thresh) + 1, 0),
                    "-1 (not 0)")],
}


def test_every_check_has_planted_mistakes():
    assert set(PLANTED) == set(ex.ALL_CHECKS)


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_planted_mistakes_are_caught(name):
    check = getattr(ex, name)
    for i, (wrong, hint) in enumerate(PLANTED[name]):
        res = check(wrong, verbose=False)
        assert res.status == "failed", f"{name} let planted mistake {i} pass"
        assert "case" in res.message and "inputs:" in res.message and "hint:" in res.message
        assert "Traceback" not in res.message
        if hint:
            got = res.message.split("hint:")[1]
            assert hint in got, f"{name}, mistake {i}: hint {got!r} lacks {hint!r}"


# Days 1 and 2: correct solutions written another way than the notebooks' must pass.
def _conf_loops(pred, label, k, ignore_index=255):
    conf = np.zeros((k, k), np.int64)
    for i in range(k):
        for j in range(k):
            conf[i, j] = np.count_nonzero((label == i) & (pred == j) & (label != ignore_index))
    return conf


def _scores_loop(conf):
    conf = np.asarray(conf, float)
    iou, acc = [], []
    for c in range(len(conf)):
        tp, fn, fp = conf[c, c], conf[c].sum() - conf[c, c], conf[:, c].sum() - conf[c, c]
        iou.append(tp / (tp + fp + fn) if tp + fp + fn else np.nan)
        acc.append(tp / (tp + fn) if tp + fn else np.nan)
    iou, acc = np.array(iou), np.array(acc)
    return dict(iou=iou, miou=iou[~np.isnan(iou)].mean(), acc=acc, macc=acc[~np.isnan(acc)].mean())


def _step_zero_first(model, opt, x, y):
    opt.clear_grad()                                  # clearing before the backward is as good
    model.train()
    loss = paddle.nn.CrossEntropyLoss(ignore_index=255, axis=1)(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def _bilinear_matrices(x, size, align_corners=False):
    def weights(n_out, n_in):                         # (n_out, n_in) interpolation matrix
        d = np.arange(n_out, dtype=np.float64)
        if n_out == 1:
            src = np.zeros(1)
        elif align_corners:
            src = d * (n_in - 1) / (n_out - 1)
        else:
            src = np.clip((d + 0.5) * n_in / n_out - 0.5, 0, None)
        lo = np.clip(np.floor(src).astype(int), 0, n_in - 1)
        hi = np.clip(lo + 1, 0, n_in - 1)
        m = np.zeros((n_out, n_in))
        np.add.at(m, (np.arange(n_out), lo), 1 - (src - lo))
        np.add.at(m, (np.arange(n_out), hi), src - lo)
        return m
    return weights(size[0], x.shape[0]) @ x @ weights(size[1], x.shape[1]).T


def _unpool_divmod(x, idx, size):
    out = np.zeros((x.shape[0],) + tuple(size), np.float32)
    rows, cols = np.divmod(idx, size[1])
    out[np.arange(x.shape[0])[:, None, None], rows, cols] = x
    return out


def _tconv_scatter(x, w, stride=1, padding=0):
    c_in, h, wd = x.shape
    k = w.shape[-1]
    full = np.zeros((w.shape[1], (h - 1) * stride + k, (wd - 1) * stride + k), np.float32)
    for i in range(h):
        for j in range(wd):                           # each input pixel adds a scaled kernel
            full[:, i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum("c,cokl->okl", x[:, i, j], w)
    return full[:, padding:full.shape[1] - padding, padding:full.shape[2] - padding]


def _fuse_functional(coarse, skip, up2):
    return paddle.add(skip, paddle.slice(up2(coarse), [2, 3], [0, 0], list(skip.shape[-2:])))


def _fcn_logits_loop(model, x):
    n, _, h, w = x.shape
    big = paddle.zeros([n, 3, h + (-h % 32), w + (-w % 32)])
    big[:, :, :h, :w] = x
    feats = model.backbone(big)
    score = model.score_fr(feats[5])
    for level, pool in ((16, 3), (8, 2)):
        if model.stride <= level:
            name = f"pool{pool + 1}"
            score = _fuse_functional(score, getattr(model, f"score_{name}")(feats[pool]),
                                     model.up2_fr if pool == 3 else model.up2_pool4)
    return model.up_final(score)[:, :, :h, :w]


ALTERNATIVES_DAYS_1_2 = {
    "check_confusion_matrix": _conf_loops,
    "check_miou": _scores_loop,
    "check_train_step": _step_zero_first,
    "check_bilinear_resize": _bilinear_matrices,
    "check_max_unpool": _unpool_divmod,
    "check_transposed_conv": _tconv_scatter,
    "check_fc_to_conv": lambda wt, s: wt.reshape(*s, wt.shape[1]).transpose(3, 0, 1, 2),
    "check_fcn_fuse": _fuse_functional,
    "check_fcn_logits": _fcn_logits_loop,
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_stub_reports_not_done_and_errors_are_reported(name):
    def stub(*a, **k):
        raise NotImplementedError("write me")

    def broken(*a, **k):
        return {}["missing"]

    check = getattr(ex, name)
    res = check(stub, verbose=False)
    assert res.status == "not done" and not res.passed and "not done yet" in res.message
    assert ex.RESULTS[name] is res
    res = check(broken, verbose=False)
    assert res.status == "failed" and "KeyError" in res.message


def test_report_shows_a_small_example():
    def wrong_shape(x, size, align_corners=False):
        return np.zeros(size[::-1])

    res = ex.check_bilinear_resize(wrong_shape, verbose=False)
    assert "shape (6, 4), expected (4, 6)" in res.message and "axes swapped" in res.message
    res = ex.check_box_iou(lambda a, b: _iou(a, b, clip=False), verbose=False)
    assert "expected:" in res.message and "yours:" in res.message     # the 1 x 4 example, in full
    assert "case 1 of 4" in res.message


def test_references_agree_with_paddle():
    """The checks' own references (common) match Paddle's built-ins."""
    from paddle.vision.ops import nms as paddle_nms, roi_align

    from common.ops.boxes import nms_numpy, roi_align_numpy
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 40, (40, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(2, 20, (40, 2))], 1).astype(np.float32)
    scores = rng.random(40).astype(np.float32)
    ref = paddle_nms(paddle.to_tensor(boxes), 0.4, scores=paddle.to_tensor(scores)).numpy()
    assert np.array_equal(np.sort(ref), np.sort(nms_numpy(boxes, scores, 0.4)))
    feat = rng.standard_normal((2, 9, 11)).astype(np.float32)
    box = np.array([[0.3, 1.2, 10.5, 8.9]], np.float32)
    pd = roi_align(paddle.to_tensor(feat[None]), paddle.to_tensor(box), paddle.to_tensor([1], "int32"), 3,
                   sampling_ratio=2, aligned=True)[0].numpy()
    assert np.allclose(pd, roi_align_numpy(feat, box, 3, sampling_ratio=2)[0], atol=1e-5)
    w = rng.standard_normal((12, 5)).astype(np.float32)
    x = rng.standard_normal((1, 3, 2, 2)).astype(np.float32)
    conv = F.conv2d(paddle.to_tensor(x), paddle.to_tensor(ops.fc_weight_to_conv(w, None, (3, 2, 2))))
    assert np.allclose(conv.numpy().ravel(), x.reshape(1, -1) @ w, atol=1e-5)
    a, b = boxes[:5], boxes[5:9]
    assert np.allclose(_box_iou_paddle(a, b).numpy(), _iou(a, b), atol=1e-6)


# ------------------------------------------- Days 5 and 6: correct solutions written another way
def _alt_gcu(x, anchors, sigma):
    from scipy.special import logsumexp
    r = np.einsum("ldv,dv->lvd", x[:, :, None] - anchors[None], 1 / sigma)       # (L, V, d)
    logit = -0.5 * (r ** 2).sum(-1)
    q = np.exp(logit - logsumexp(logit, axis=1, keepdims=True))
    z = np.einsum("lv,lvd->vd", q, r) / q.sum(0)[:, None]
    return q, z / np.sqrt((z ** 2).sum(1, keepdims=True))


def _alt_graph_conv(v, a_g, w_g, relu=True):
    v, a, w = v.numpy(), a_g.numpy(), w_g.numpy()
    h = np.einsum("kj,njs->nks", np.eye(len(a)) - a, v)
    return np.einsum("nks,st->nkt", np.maximum(h, 0) if relu else h, w)


def _alt_glore(x, unit):
    n, c, h, w = x.shape
    states = unit.state(x).flatten(2)                                 # (N, S, L)
    b = unit.proj(x).flatten(2)                                       # (N, k, L)
    v = paddle.einsum("nkl,nsl->nks", b, states) / (h * w)
    y = paddle.einsum("nkl,nks->nsl", b, unit.gcn(v)).reshape([n, -1, h, w])
    return x + unit.bn(unit.extend(y))


def _alt_gi(p, s, unit):
    def attend(q, keys, values):
        a = paddle.einsum("nid,njd->nij", q, keys) / np.sqrt(q.shape[-1])
        a = paddle.exp(a - a.max(-1, keepdim=True))
        return paddle.einsum("nij,njd->nid", a / a.sum(-1, keepdim=True), values)
    p_o = unit.gcn_v(p + attend(p, s, unit.s2v(s)))
    return p_o, unit.gcn_s(s + attend(s, p_o, unit.v2s(p_o)))


def _alt_pq(pred, target, things, stuffs):
    def segments(m):
        out = {}
        for v in np.unique(m):
            c = int(v) // LABEL_DIVISOR
            key = int(v) if c in things else c * LABEL_DIVISOR
            out[key] = out.get(key, np.zeros(m.shape, bool)) | (m == v)
        return out
    ps, ts = segments(pred), segments(target)
    stats = {}
    used = set()
    for g, gm in ts.items():
        for p_, pm in ps.items():
            if p_ // LABEL_DIVISOR == g // LABEL_DIVISOR and (gm & pm).sum() * 2 > (gm | pm).sum():
                stats.setdefault(g // LABEL_DIVISOR, []).append((gm & pm).sum() / (gm | pm).sum())
                used.add(p_)
                break
        else:
            stats.setdefault(g // LABEL_DIVISOR, []).append("fn")
    for p_ in set(ps) - used:
        stats.setdefault(p_ // LABEL_DIVISOR, []).append("fp")
    rows = []
    for items in stats.values():
        ious = [i for i in items if not isinstance(i, str)]
        rq = len(ious) / (len(ious) + 0.5 * (len(items) - len(ious)))
        sq = float(np.mean(ious)) if ious else 0.0
        rows.append((sq * rq, sq, rq))
    return dict(zip(("pq", "sq", "rq"), np.mean(rows, 0)))


def _alt_link(prev_masks, prev_labels, masks, labels, iou_thresh=0.1):
    """Brute force over every one-to-one assignment (the inputs of the check are small)."""
    import itertools
    n, m = len(prev_masks), len(masks)
    out = np.full(m, -1, np.int64)
    if not n or not m:
        return out
    iou = np.array([[(a & b).sum() / max((a | b).sum(), 1) if la == lb else 0.0
                     for b, lb in zip(masks, labels)] for a, la in zip(prev_masks, prev_labels)])
    best, pairs = -1.0, None
    for perm in itertools.permutations(range(max(n, m)), min(n, m)):
        cand = list(zip(perm, range(m))) if n >= m else list(zip(range(n), perm))
        total = sum(iou[r, c] for r, c in cand)
        if total > best + 1e-12:
            best, pairs = total, cand
    for r, c in pairs:
        if iou[r, c] >= iou_thresh:
            out[c] = r
    return out


ALTERNATIVES_DAYS_5_6 = {"check_gcu_projection": _alt_gcu, "check_graph_conv": _alt_graph_conv,
                "check_glore_unit": _alt_glore, "check_gi_reasoning": _alt_gi, "check_pq": _alt_pq,
                "check_link": _alt_link}


def test_day5_day6_references_follow_the_library():
    """The references of the new checks are the library's own computations."""
    from common.course.exercises.day5 import _gi_ref
    from common.course.exercises.day6 import _link_ref
    from common.data import make_clip
    from common.models.graph import GIUnit
    from common.video import link_instances, noisy_instances
    paddle.seed(0)
    unit = GIUnit(8, np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32), num_nodes=3, node_dim=6)
    unit.eval()
    x = paddle.randn([2, 8, 5, 7])
    unit(x)                                                    # sets class_logits from its own S_o
    _, p = unit.visual_graph(x)
    s = unit.sem_mlp(unit.embeddings).unsqueeze(0).expand([2, -1, -1])
    _, s_o = _gi_ref(p, s, unit)
    assert np.allclose(unit.score(paddle.to_tensor(s_o)).numpy()[..., 0], unit.class_logits.numpy(), atol=1e-5)
    clip = make_clip(1, 6, 64, num_things=3)
    det = noisy_instances(clip["instance"], clip["labels"], seed=1)
    ids = link_instances(det, motion=False, max_age=0)
    for t in range(1, 6):                  # a track of the previous frame only: two-frame linking
        idx = _link_ref(det[t - 1]["masks"], det[t - 1]["labels"], det[t]["masks"], det[t]["labels"])
        assert np.array_equal(ids[t][idx >= 0], ids[t - 1][idx[idx >= 0]])


# ----------------------------------------------------------------- student release
def _solution_lines(nb):
    """Distinctive lines of the solutions and worked answers (not found elsewhere)."""
    sol, rest = [], []
    for c in nb.cells:
        inside = False
        for line in c.source.splitlines():
            s = line.strip()
            if s in (student.BEGIN, student.ANSWER_BEGIN):
                inside = True
            elif s in (student.END, student.ANSWER_END):
                inside = False
            elif s:
                (sol if inside else rest).append(s)
    return {s for s in sol if len(s) >= 12 and s not in rest}


def test_student_release_has_no_solutions(tmp_path):
    written = student.write_release(tmp_path)
    assert len(written) == len(NOTEBOOKS)
    for src in NOTEBOOKS:
        inst = nbformat.read(src, as_version=4)
        out = tmp_path / src.parent.name / "exercises.ipynb"
        text = out.read_text()
        nb = nbformat.read(out, as_version=4)
        for marker in (student.BEGIN, student.END, student.ANSWER_BEGIN, student.ANSWER_END):
            assert marker not in text
        lines = {ln.strip() for c in nb.cells for ln in c.source.splitlines()}
        leaked = sorted(_solution_lines(inst) & lines)
        assert not leaked, f"{out}: solution text leaked: {leaked[:3]}"
        assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code")
        stubs = sum(c.source.count("raise NotImplementedError(") for c in nb.cells if c.cell_type == "code")
        assert stubs == sum(c.source.count(student.BEGIN) for c in inst.cells)
        assert "hint:" in text and "NBVAL" not in text
        # the markdown and the def lines survive
        assert [c.cell_type for c in nb.cells] == [c.cell_type for c in inst.cells]
        defs = re.findall(r"^def \w+\(.*\):$", "\n".join(c.source for c in inst.cells), re.M)
        assert defs and all(d in "\n".join(c.source for c in nb.cells) for d in defs)


def test_student_release_one_day_and_bad_input(tmp_path):
    written = student.write_release(tmp_path, ["day2_fcn"])
    assert [p.parent.name for p in written] == ["day2_fcn"]
    with pytest.raises(FileNotFoundError, match="day9_nothing"):
        student.write_release(tmp_path, ["day9_nothing"])
    with pytest.raises(ValueError, match="without"):
        student.strip_solutions("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    stub = student.strip_solutions("def f(x):\n    # Hint: add one.\n    ### BEGIN SOLUTION\n"
                                   "    return x + 1\n    ### END SOLUTION\n")
    assert stub == "def f(x):\n    # Hint: add one.\n    raise NotImplementedError('f is not done yet; hint: add one.')"


@pytest.mark.parametrize("day", sorted(ex.DAYS))
def test_student_notebook_runs_and_checkin_collects(tmp_path, monkeypatch, day):
    """Each day's student release runs end to end (FAST mode) through the check-in: no cell
    crashes and every check reports "not done"."""
    from common.course import checkin
    student.write_release(tmp_path, [day])
    monkeypatch.setenv("SEGCOURSE_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = checkin.run_notebook(tmp_path / day / "exercises.ipynb", timeout=300)
    assert run["errors"] == []
    assert run["checks"] == {name: "not done" for name in ex.DAYS[day]}
    data = checkin.summary([run])
    total = len(ex.DAYS[day])
    assert data["passed"] == 0 and data["total"] == total
    table = checkin.format_table([run])
    assert day in table and f"0/{total}" in table
    if day == "day1_concepts":
        assert "train_step (not done)" in table


def test_checkin_table_says_why_a_check_failed(tmp_path, monkeypatch):
    """A failed check shows its failing case and what differed, in one line, without the hint."""
    from common.course import checkin
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from common.course import exercises as ex"),
                nbformat.v4.new_code_cell("import numpy as np\n"
                                          "ex.check_miou(lambda c: dict(iou=np.zeros(len(c)), miou=0.0,"
                                          " acc=np.zeros(len(c)), macc=0.0))"),
                nbformat.v4.new_code_cell("ex.check_train_step(lambda *a: {}['missing'])")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "day1_concepts").mkdir()
    nbformat.write(nb, tmp_path / "day1_concepts" / "exercises.ipynb")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    run = checkin.run_notebook(tmp_path / "day1_concepts" / "exercises.ipynb", timeout=300)
    assert set(run["reasons"]) == {"check_miou", "check_train_step"}
    table = checkin.format_table([run])
    assert "miou (failed)" in table and "confusion_matrix (not run)" in table
    line = next(ln for ln in table.splitlines() if "miou failed at" in ln)
    assert "case 1 of" in line and "the 3-class example" in line and "result['iou']" in line
    assert "hint" not in line
    line = next(ln for ln in table.splitlines() if "train_step failed at" in ln)
    assert "case 1 of" in line and "KeyError" in line
    assert "reasons" not in json.dumps(checkin.summary([run]))       # the JSON keeps statuses only
    assert checkin.failure_reason("✗ check_x: the check itself failed (ValueError: boom)") == \
        "the check itself failed (ValueError: boom)"


def test_checkin_cli_on_instructor_notebook(tmp_path):
    """The command line, on a copy of the instructor's Day 2 (all solutions in place)."""
    day = tmp_path / "day2_fcn"
    day.mkdir()
    (day / "exercises.ipynb").write_text((ROOT / "day2_fcn" / "exercises.ipynb").read_text())
    env = {**__import__("os").environ, "SEGCOURSE_FAST": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "common.course.checkin", str(tmp_path)], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    n = len(ex.DAYS["day2_fcn"])
    assert f"{n}/{n}" in out.stdout and "not uploaded" in out.stdout and "failed at" not in out.stdout
    data = json.loads((tmp_path / "checkin.json").read_text())
    assert data["days"]["day2_fcn"]["passed"] == n and data["total"] == n


# A correct solution written another way passes every check (one per check, gathered by day).
ALTERNATIVES = {**ALTERNATIVES_DAYS_1_2, **ALTERNATIVES_DAYS_3_4, **ALTERNATIVES_DAYS_5_6}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_a_correct_solution_written_another_way_passes(name):
    res = getattr(ex, name)(ALTERNATIVES[name], verbose=False)
    assert res.passed, res.message
