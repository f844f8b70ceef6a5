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
from common.ops.boxes import box_iou as _box_iou_paddle
from common.models.panoptic_deeplab import group_pixels as _group_ref

ROOT = Path(__file__).resolve().parents[1]
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
def _conf_transposed(pred, label, k, ignore_index=255):
    keep = label != ignore_index
    return np.bincount(pred[keep] * k + label[keep], minlength=k * k).reshape(k, k)


def _conf_counts_ignored(pred, label, k, ignore_index=255):
    lab = np.minimum(label, k - 1)               # 255 clipped into the last class
    return np.bincount(lab.ravel() * k + pred.ravel(), minlength=k * k).reshape(k, k)


def _scores(conf, nan=True, recall=True):
    conf = np.asarray(conf, float)
    tp = np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / (conf.sum(0) + conf.sum(1) - tp)
        acc = tp / (conf.sum(1) if recall else conf.sum(0))
    mean = np.nanmean if nan else (lambda a: np.mean(np.nan_to_num(a)))
    return dict(iou=iou, miou=mean(iou), acc=acc, macc=mean(acc))


def _step(model, opt, x, y, clear=True, ignore=True, step=True, train=True):
    if train:
        model.train()
    loss = F.cross_entropy(model(x), y, axis=1, ignore_index=255 if ignore else -100)
    loss.backward()
    if step:
        opt.step()
    if clear:
        opt.clear_grad()
    return float(loss)


def _step_ignore_as_background(model, opt, x, y):
    return _step(model, opt, x, paddle.where(y == 255, paddle.zeros_like(y), y))


def _bilinear(x, size, align_corners=False, clamp=True, flip=False):
    ac = (not align_corners) if flip else align_corners

    def coords(n_out, n_in):
        d = np.arange(n_out)
        src = d * (n_in - 1) / max(n_out - 1, 1) if ac else (d + 0.5) * n_in / n_out - 0.5
        src = np.maximum(src, 0) if clamp else src
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0
    j0, j1, tx = coords(size[1], x.shape[1])
    r = x[:, j0] * (1 - tx) + x[:, j1] * tx
    i0, i1, ty = coords(size[0], x.shape[0])
    return r[i0] * (1 - ty[:, None]) + r[i1] * ty[:, None]


def _unpool(x, idx, size, use_h=False):
    c = x.shape[0]
    h, w = size
    if use_h:
        idx = (idx // h) * w + idx % h
    out = np.zeros((c, h * w), np.float32)
    np.put_along_axis(out, idx.reshape(c, -1), x.reshape(c, -1), axis=1)
    return out.reshape(c, h, w)


def _tconv(x, w, stride=1, padding=0, rotate=True, pad_fix=True, swap=True):
    k = w.shape[-1]
    z = ops.zero_insert(x, stride)
    p = k - 1 - (padding if pad_fix else 0)
    z = np.pad(z, ((0, 0), (p, p), (p, p)))
    wr = w.transpose(1, 0, 2, 3) if swap else w
    return ops.conv2d(z, wr[:, :, ::-1, ::-1] if rotate else wr)


def _crop_concat(skip, x, shift=0, order="skip"):
    h, w = x.shape[-2:]
    top, left = (skip.shape[-2] - h + shift) // 2, (skip.shape[-1] - w + shift) // 2
    crop = skip[:, :, top:top + h, left:left + w]
    return np.concatenate([crop, x] if order == "skip" else [x, crop], 1)


def _rf(layers, dilation=True, jump_after=True):
    rf, jump = 1, 1
    for k, s, d in layers:
        d = d if dilation else 1
        if not jump_after:
            jump *= s
        rf += d * (k - 1) * jump
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
    "check_confusion_matrix": [(_conf_transposed, "transpose"), (_conf_counts_ignored, "ignore")],
    "check_miou": [(lambda c: _scores(c, nan=False), "NaN"), (lambda c: _scores(c, recall=False), "recall")],
    "check_train_step": [(lambda m, o, x, y: _step(m, o, x, y, clear=False), "clear"),
                         (lambda m, o, x, y: _step(m, o, x, y, step=False), "step()"),
                         (_step_ignore_as_background, None),
                         (lambda m, o, x, y: _step(m, o, x, y, train=False), "training mode")],
    "check_bilinear_resize": [(lambda x, s, align_corners=False: _bilinear(x, s, align_corners, flip=True),
                               "align_corners"),
                              (lambda x, s, align_corners=False: _bilinear(x, s, align_corners, clamp=False), "clamp"),
                              (lambda x, s, align_corners=False: _bilinear(x, s[::-1], align_corners), None)],
    "check_max_unpool": [(lambda x, i, s: _unpool(x, i, s, use_h=True), "row * W + col"),
                         (lambda x, i, s: _unpool(x, i, s)[:, ::-1], None)],
    "check_transposed_conv": [(lambda x, w, stride=1, padding=0: _tconv(x, w, stride, padding, rotate=False),
                               "rotate"),
                              (lambda x, w, stride=1, padding=0: _tconv(x, w, stride, padding, pad_fix=False),
                               "k - 1 - padding"),
                              (lambda x, w, stride=1, padding=0: _tconv(x, w, stride, padding, swap=False), None)],
    "check_fc_to_conv": [(lambda wt, s: wt.reshape(wt.shape[1], *s), "transpose"),
                         (lambda wt, s: wt.T.reshape(wt.shape[1], s[1], s[2], s[0]).transpose(0, 3, 1, 2),
                          "C slowest")],
    "check_crop_concat": [(lambda s, x: _crop_concat(s, x, shift=1), "off by one"),
                          (lambda s, x: _crop_concat(s, x, order="x"), None)],
    "check_receptive_field": [(lambda l: _rf(l, jump_after=False), "after"),
                              (lambda l: _rf(l, dilation=False), "dilated")],
    "check_psp_module": [(lambda x, b, s: _psp(x, b, s, ac=True), "align_corners"),
                         (lambda x, b, s: _psp(x, b, s, mode="nearest"), None)],
    "check_atrous_conv": [(lambda x, w, r, padding=0: _atrous(x, w, r, padding, zeros=r), "rate - 1"),
                          (lambda x, w, r, padding=0: ops.conv2d(x, w, padding=padding), None)],
    "check_aspp_sum": [(lambda x, ws, bs, rs: paddle.add_n([F.conv2d(x, w, b, padding=1)
                                                            for w, b in zip(ws, bs)]), None),
                       (lambda x, ws, bs, rs: paddle.add_n([F.conv2d(x, w, b, padding=r, dilation=r)
                                                            for w, b, r in zip(ws, bs, rs)]) / len(rs), "sums")],
    "check_aspp_concat": [(lambda x, br, pool, proj: proj(paddle.concat(
        [pool(F.adaptive_avg_pool2d(x, 1)).expand([-1, -1, x.shape[2], x.shape[3]])] + [b(x) for b in br], 1)), "last"),
        (lambda x, br, pool, proj: proj(paddle.concat(
            [b(x) for b in br] + [pool(F.adaptive_max_pool2d(x, 1)).expand([-1, -1, x.shape[2], x.shape[3]])], 1)),
         "average")],
    "check_meanfield_step": [(lambda q, u, k: _softmax(-u - q @ k.T), "add it"),
                             (lambda q, u, k: _softmax(-u + q @ k.T, axis=1), "labels"),
                             (lambda q, u, k: _softmax(-u + q @ k), None)],
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


ALTERNATIVES = {"check_gcu_projection": _alt_gcu, "check_graph_conv": _alt_graph_conv,
                "check_glore_unit": _alt_glore, "check_gi_reasoning": _alt_gi, "check_pq": _alt_pq,
                "check_link": _alt_link}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_a_correct_solution_written_another_way_passes(name):
    res = getattr(ex, name)(ALTERNATIVES[name], verbose=False)
    assert res.passed, res.message


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


def test_checkin_cli_on_instructor_notebook(tmp_path):
    """The command line, on a copy of the instructor's Day 2 (all solutions in place)."""
    day = tmp_path / "day2_fcn"
    day.mkdir()
    (day / "exercises.ipynb").write_text((ROOT / "day2_fcn" / "exercises.ipynb").read_text())
    env = {**__import__("os").environ, "SEGCOURSE_FAST": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "common.course.checkin", str(tmp_path)], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "4/4" in out.stdout and "not uploaded" in out.stdout
    data = json.loads((tmp_path / "checkin.json").read_text())
    assert data["days"]["day2_fcn"]["passed"] == 4 and data["total"] == 4
