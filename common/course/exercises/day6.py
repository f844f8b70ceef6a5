"""Day 6: box IoU, NMS, RoIAlign, panoptic quality, Panoptic-DeepLab's grouping, VIS linking."""
from __future__ import annotations

import numpy as np
import paddle
from paddle.vision.ops import roi_align
from scipy.optimize import linear_sum_assignment

from common.data import convoy_clip, make_clip
from common.data.synthetic import DISC
from common.labels import LABEL_DIVISOR
from common.lang import N_, _
from common.metrics import mask_iou, panoptic_quality
from common.models.panoptic_deeplab import group_pixels
from common.ops.boxes import box_iou, nms_numpy, roi_align_numpy
from common.video import link_instances, noisy_instances

from .framework import Case, _rng, check, run_check


def _box_iou_ref(a, b):
    return box_iou(np.asarray(a, np.float32), np.asarray(b, np.float32)).numpy()


def _random_boxes(rng, n, size=50):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


@check("day6_instance_panoptic")
def check_box_iou(fn, verbose=True):
    """``fn(a, b)``: boxes (n, 4) and (m, 4) as (x0, y0, x1, y1), x1/y1 exclusive (area
    (x1 - x0) * (y1 - y0)) -> IoU matrix (n, m); disjoint boxes have IoU 0.

    """
    a = np.array([[0, 0, 2, 2]], np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [2, 0, 4, 2], [5, 5, 6, 6]], np.float32)
    rng = _rng(17)
    cases = [Case(N_("a 2x2 box against shifted, equal, touching and far boxes"), (a, b)),
             Case(N_("nested boxes"), (np.array([[0, 0, 4, 4]], np.float32), np.array([[1, 1, 3, 3]], np.float32)))]
    for n, m in [(5, 7), (20, 3)]:
        cases.append(Case(_("random {n} x {m} boxes").format(n=n, m=m), (_random_boxes(rng, n), _random_boxes(rng, m))))
    for c in cases:
        c.expected = _box_iou_ref(*c.args)

    def variant(a, b, plus_one=False, clip=True):
        e = 1.0 if plus_one else 0.0
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        wh = rb - lt + e
        wh = np.clip(wh, 0, None) if clip else wh
        inter = wh[..., 0] * wh[..., 1]
        area = lambda x: (x[:, 2] - x[:, 0] + e) * (x[:, 3] - x[:, 1] + e)  # noqa: E731
        return inter / (area(a)[:, None] + area(b)[None] - inter)

    mistakes = [(N_("clip the overlap's width and height at 0: two disjoint boxes have a negative "
                    "width *and* height, and their product looks like a positive overlap"),
                 lambda a, b: variant(a, b, clip=False)),
                (N_("x1, y1 are exclusive here: width = x1 - x0, no + 1 (that is the old VOC convention)"),
                 lambda a, b: variant(a, b, plus_one=True)),
                (N_("union = area(a) + area(b) - intersection (the overlap is counted once)"),
                 lambda a, b: _box_iou_ref(a, b) / (1 + _box_iou_ref(a, b))),
                (N_("the result is (n, m): row i for box a[i], column j for box b[j]"),
                 lambda a, b: _box_iou_ref(b, a))]
    return run_check("check_box_iou", fn, cases,
                     N_("the overlap of two boxes is itself a box, from the larger top-left corner to the "
                        "smaller bottom-right one, and it may be empty (clip its width and height at 0); "
                        "compare every box of a with every box of b at once by broadcasting; "
                        "union = both areas minus the overlap"), mistakes, verbose=verbose)


def _nms_ref(boxes, scores, thr):
    return nms_numpy(boxes, scores, thr)


@check("day6_instance_panoptic")
def check_nms(fn, verbose=True):
    """``fn(boxes, scores, iou_threshold)`` -> indices (int array) of the kept boxes, highest
    score first: greedy NMS, a box is dropped when its IoU with a kept box is > threshold.

    """
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9], [21, 21, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.6], np.float32)
    # IoU([0,0,4,2],[0,0,2,2]) ... exactly 0.5: kept, since only IoU > threshold suppresses
    edge = np.array([[0, 0, 4, 2], [0, 0, 2, 2], [2, 0, 4, 2]], np.float32)
    rng = _rng(18)
    cases = [Case(N_("5 boxes in two clusters"), (boxes, scores, 0.5)),
             Case(N_("IoU exactly at the threshold (0.5) is kept"), (edge, np.array([0.9, 0.8, 0.7], np.float32), 0.5)),
             Case(N_("a chain: A suppresses B, so B cannot suppress C"),
                  (np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], np.float32),
                   np.array([0.9, 0.8, 0.7], np.float32), 0.3))]
    for n, thr in [(30, 0.5), (60, 0.3), (40, 0.7)]:
        cases.append(Case(_("random {n} boxes, threshold {thr}").format(n=n, thr=thr),
                          (_random_boxes(rng, n, 40), rng.random(n).astype(np.float32), thr)))
    cases.append(Case(N_("no boxes at all"), (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5)))
    for c in cases:
        c.expected = _nms_ref(*c.args).astype(np.int64)

    def suppress_all(boxes, scores, thr):
        order = np.argsort(-scores, kind="stable")
        iou = _box_iou_ref(boxes, boxes)
        return np.array([i for i in order if not any(iou[i, j] > thr and scores[j] > scores[i]
                                                     for j in range(len(boxes)))], np.int64)

    def no_sort(boxes, scores, thr):
        keep, alive = [], np.ones(len(boxes), bool)
        iou = _box_iou_ref(boxes, boxes)
        for i in range(len(boxes)):
            if alive[i]:
                keep.append(i)
                alive &= iou[i] <= thr
        return np.array(keep, np.int64)

    mistakes = [(N_("a suppressed box must not suppress others: only kept boxes remove their "
                    "neighbours (loop over what is left, not over all boxes)"), suppress_all),
                (N_("visit the boxes from the highest score down (np.argsort(-scores))"), no_sort),
                (N_("drop a box only when IoU > threshold (strictly)"),
                 lambda b, s, t: _nms_ref(b, s, t - 1e-6)),
                (N_("remove suppressed boxes from the candidates: you kept boxes that overlap a "
                    "better one"), lambda b, s, t: np.argsort(-s, kind="stable")),
                (N_("return the kept indices by descending score (the order you kept them), not sorted "
                    "by index"), lambda b, s, t: np.sort(_nms_ref(b, s, t)))]
    return run_check("check_nms", fn, cases,
                     N_("visit the boxes from the best score down; a box you keep removes the remaining "
                        "boxes that overlap it by more than the threshold; a removed box removes nothing; "
                        "return the kept indices in the order you kept them"), mistakes, verbose=verbose)


def _roi_ref(feat, box, output_size, sampling_ratio=2):
    return roi_align(paddle.to_tensor(feat[None]), paddle.to_tensor(np.asarray(box, np.float32)[None]),
                     paddle.to_tensor([1], "int32"), output_size, spatial_scale=1.0,
                     sampling_ratio=sampling_ratio, aligned=True)[0].numpy()


@check("day6_instance_panoptic")
def check_roi_align(fn, verbose=True):
    """``fn(feat, box, output_size, sampling_ratio=2)``: feat (C, H, W), one box (x0, y0, x1,
    y1) in pixels -> (C, ph, pw) as ``paddle.vision.ops.roi_align(aligned=True)``: each bin
    averages sampling_ratio x sampling_ratio bilinear samples at the centres of its sub-cells;
    the box is shifted by half a pixel; samples just outside are clamped to the border.

    """

    ramp = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    rng = _rng(19)
    cases = [Case(N_("6x6 ramp, box (1, 1, 5, 5), 2x2 bins"), (ramp, (1, 1, 5, 5), 2)),
             Case(N_("6x6 ramp, fractional box (0.5, 1.25, 3.5, 4), 3x2 bins"),
                  (ramp, (0.5, 1.25, 3.5, 4.0), (3, 2))),
             Case(N_("box touching the border (0, 0, 6, 6)"), (ramp, (0, 0, 6, 6), 3)),
             Case(N_("small corner box (0, 0, 2, 2), 4x4 bins: samples just outside, clamped"),
                  (ramp, (0, 0, 2, 2), 4)),
             Case(N_("box hanging over the bottom-right edge"), (ramp, (3.2, 4.1, 7.5, 7.9), 3))]
    for c, hw, box, out, sr in [(2, (9, 11), (1.3, 2.1, 8.7, 7.9), 4, 2),
                                (3, (16, 12), (0.0, 3.0, 12.0, 15.5), (5, 3), 3),
                                (1, (8, 8), (2.2, 2.2, 4.4, 5.1), 7, 1)]:
        cases.append(Case(_("random C={c} {hw} box {box} -> {out}, {sr} samples").format(
                              c=c, hw=hw, box=box, out=out, sr=sr),
                          (rng.standard_normal((c,) + hw).astype(np.float32), box, out),
                          dict(sampling_ratio=sr)))
    for case in cases:
        case.expected = _roi_ref(*case.args, **case.kwargs)

    def not_aligned(feat, box, out, sampling_ratio=2):
        return roi_align_numpy(feat, [box], out, sampling_ratio=sampling_ratio, aligned=False)[0]

    def rounded(feat, box, out, sampling_ratio=2):
        return roi_align_numpy(feat, [np.round(np.asarray(box, float))], out, sampling_ratio=sampling_ratio)[0]

    def no_clamp(feat, box, out, sampling_ratio=2):
        """Samples outside the map read zeros instead of the border pixel."""
        c, h, w = feat.shape
        pad = np.pad(feat, ((0, 0), (1, 1), (1, 1)))
        b = np.asarray(box, float) + 1
        return roi_align_numpy(pad, [b], out, sampling_ratio=sampling_ratio)[0]

    def clamp_all(feat, box, out, sampling_ratio=2):
        """Every sample clamped to the border, however far outside."""
        c, h, w = feat.shape
        pad = np.pad(feat, ((0, 0), (8, 8), (8, 8)), mode="edge")
        return roi_align_numpy(pad, [np.asarray(box, float) + 8], out, sampling_ratio=sampling_ratio)[0]

    mistakes = [(N_("aligned=True: shift the box by half a pixel (x - 0.5) so that pixel centres sit "
                    "at i + 0.5"), not_aligned),
                (N_("do not round the box to the grid (that is RoIPool's flaw): sample at the exact "
                    "fractional positions"), rounded),
                (N_("a sample up to one pixel outside reads the border pixel (clamp the position to "
                    "[0, H - 1]), not zero"), no_clamp),
                (N_("a sample more than one pixel outside the map (below -1 or above H) reads 0; only "
                    "the ones just outside are clamped"), clamp_all),
                (N_("a bin's value is the mean of its sr x sr samples, not their sum"),
                 lambda f, b, o, sampling_ratio=2: _roi_ref(f, b, o, sampling_ratio) * sampling_ratio ** 2)]
    return run_check("check_roi_align", fn, cases,
                     N_("aligned RoIAlign: pixel centres sit at i + 0.5, so the box moves by half a pixel; "
                        "each of the ph x pw bins averages sr x sr samples placed at the centres of an equal "
                        "sub-grid; a sample reads its four neighbouring pixels (bilinear), a sample just "
                        "outside the map reads the border, one farther out reads 0"), mistakes, verbose=verbose)


def _pq_ref(pred, target, things, stuffs):
    r = panoptic_quality(pred, target, things, stuffs)
    return dict(pq=r["pq"], sq=r["sq"], rq=r["rq"])


@check("day6_instance_panoptic")
def check_pq(fn, verbose=True):
    """``fn(pred, target, things, stuffs)``: two panoptic maps (H, W) of ``category * LABEL_DIVISOR +
    instance`` (every pixel in a known category, no void) -> dict pq, sq, rq averaged over the
    categories that occur. Segments match when they share the category and IoU > 0.5; the
    instance id of a stuff category is ignored; RQ = TP / (TP + FP/2 + FN/2), SQ = mean IoU
    of the matches.

    """
    things, stuffs = [1, 2], [0]
    # hand-written maps spell ids out with LABEL_DIVISOR = 1000: 1001 = category 1, instance 1
    t = np.zeros((6, 8), np.int64)
    t[1:4, 1:4] = 1001
    t[1:4, 5:8] = 1002
    t[4:6, 0:3] = 2001
    p = t.copy()
    p[1:4, 4] = 1001             # car 1 grows by a column: IoU 9/12
    p[1:4, 5:7] = 1005           # car 2 found with IoU 6/9 under another id (ids need not agree)
    p[1:4, 7] = 1007             # the rest of car 2 as a small extra car: a false positive
    p[4:6, 0] = 0                # the person shrinks: IoU 4/6
    cases = [Case(N_("6x8 scene: 2 cars, a person, background"), (p, t, things, stuffs))]
    q, tq = np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64)
    q[:, :2] = 1001
    tq[:, 1:3] = 1001            # IoU 4/12: no match, one FP and one FN
    cases.append(Case(N_("a car moved by one column: IoU 1/3 is no match"), (q, tq, things, stuffs)))
    q2, tq2 = np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64)
    q2[:2, :] = 1003             # 8 pixels over a 4-pixel car: IoU exactly 0.5
    tq2[:2, :2] = 1001
    tq2[2:, :2] = 1002
    q2[2:, 2:] = 7               # stuff with an instance id: still the one segment of class 0
    cases.append(Case(N_("IoU exactly 0.5 (4 of 8) is not a match; stuff instance ids ignored"),
                      (q2, tq2, things, stuffs)))
    q3, tq3 = np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64)
    q3[:] = np.arange(4)[None]   # background predicted with instance ids 0..3 (one per column)
    q3[:2, :2] = tq3[:2, :2] = 1001
    cases.append(Case(N_("stuff predicted with varying instance ids is still one segment"),
                      (q3, tq3, things, stuffs)))
    q4, tq4 = np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64)
    tq4[1:3, 1:3] = 1001
    q4[1:3, 1:3] = 2001          # the same pixels, the wrong category
    cases.append(Case(N_("a car predicted as a person on the same pixels: no match (FN car, FP person)"),
                      (q4, tq4, things, stuffs)))
    q5, tq5 = np.zeros((4, 6), np.int64), np.zeros((4, 6), np.int64)
    tq5[1:3, 1:3] = q5[1:3, 1:3] = 1001
    q5[0:2, 4:6] = 2004          # a person only in the prediction: category 2 is all FP
    cases.append(Case(N_("a category found only in the prediction still counts (its PQ is 0)"),
                      (q5, tq5, things, stuffs)))
    for seed in (0, 1):
        r = _rng(100 + seed)
        tgt = np.full((24, 24), 3 * LABEL_DIVISOR, np.int64)
        for i in range(1, 6):
            y, x = r.integers(0, 18, 2)
            tgt[y:y + 6, x:x + 6] = int(r.choice([1, 2])) * LABEL_DIVISOR + i
        prd = tgt.copy()
        for i in range(1, 6):                  # move some instances sideways by up to 3 pixels
            inst = tgt % LABEL_DIVISOR == i
            if inst.any() and r.random() < 0.6:
                prd[np.roll(inst, int(r.integers(-3, 4)), axis=1)] = tgt[inst][0] + 10
        cases.append(Case(_("random 24x24 scene {seed} (stuff 0 absent from both maps)").format(seed=seed),
                          (prd, tgt, things, stuffs + [3])))
    for c in cases:
        c.expected = _pq_ref(*c.args)

    def pq_variant(pred, target, things, stuffs, thresh=0.5, strict=True, stuff_ids=True, category=True,
                   over="occur", half=0.5, sq_all=False, pooled=False):
        cats = list(things) + list(stuffs)

        def segs(m):
            cat = m // LABEL_DIVISOR
            return np.where(np.isin(cat, things) | (not stuff_ids), m, cat * LABEL_DIVISOR)
        ps, ts = segs(pred), segs(target)
        tp = dict.fromkeys(cats, 0)
        fp, fn, ious = dict(tp), dict(tp), {c: 0.0 for c in cats}
        matched_p = set()
        for g in np.unique(ts):
            best, bi = None, 0.0
            for p_ in np.unique(ps):
                if (category and p_ // LABEL_DIVISOR != g // LABEL_DIVISOR) or p_ in matched_p:
                    continue
                inter = np.sum((ts == g) & (ps == p_))
                iou = inter / np.sum((ts == g) | (ps == p_))
                ok = iou > thresh if strict else iou >= thresh
                if ok and iou > bi:
                    best, bi = p_, iou
            if best is None:
                fn[g // LABEL_DIVISOR] += 1
            else:
                matched_p.add(best)
                tp[g // LABEL_DIVISOR] += 1
                ious[g // LABEL_DIVISOR] += bi
        for p_ in np.unique(ps):
            if p_ not in matched_p:
                fp[p_ // LABEL_DIVISOR] += 1
        if pooled:
            t, f_p, f_n, i = (sum(d.values()) for d in (tp, fp, fn, ious))
            sq, rq = (i / t if t else 0.0), t / (t + half * (f_p + f_n))
            return dict(pq=sq * rq, sq=sq, rq=rq)
        in_target = set(np.unique(ts) // LABEL_DIVISOR)
        rows = []
        for c in cats:
            occurs = tp[c] + fp[c] + fn[c] > 0
            if over == "all" or (over == "target" and c in in_target) or (over == "occur" and occurs):
                if not occurs:
                    rows.append((0.0, 0.0, 0.0))
                    continue
                sq = ious[c] / (tp[c] + fp[c] + fn[c] if sq_all else tp[c]) if tp[c] else 0.0
                rq = tp[c] / (tp[c] + half * (fp[c] + fn[c]))
                rows.append((sq * rq, sq, rq))
        pq, sq, rq = np.mean(rows, 0)
        return dict(pq=pq, sq=sq, rq=rq)

    mistakes = [(N_("a match needs the same category: a car predicted as a person on the same pixels is "
                    "a false negative for 'car' and a false positive for 'person', not a true positive"),
                 lambda *a: pq_variant(*a, category=False)),
                (N_("a match needs IoU > 0.5 (that threshold makes matches unique); without it "
                    "every overlapping pair counts"), lambda *a: pq_variant(*a, thresh=0.0)),
                (N_("the threshold is strict: IoU exactly 0.5 is not a match"),
                 lambda *a: pq_variant(*a, strict=False)),
                (_("a stuff category is one segment whatever its instance id: use category * {divisor}").format(
                    divisor=LABEL_DIVISOR),
                 lambda *a: pq_variant(*a, stuff_ids=False)),
                (N_("a category that appears only in the prediction counts too (all its segments are "
                    "false positives, its PQ is 0)"), lambda *a: pq_variant(*a, over="target")),
                (N_("average over the categories that occur (any TP, FP or FN); a category absent from "
                    "both maps is left out, not scored 0"), lambda *a: pq_variant(*a, over="all")),
                (N_("RQ = TP / (TP + FP/2 + FN/2): each unmatched segment costs a half"),
                 lambda *a: pq_variant(*a, half=1.0)),
                (N_("SQ is the mean IoU of the matches only: divide the summed IoU by TP"),
                 lambda *a: pq_variant(*a, sq_all=True)),
                (N_("PQ, SQ and RQ are computed per category and then averaged over the categories, "
                    "not pooled over all segments"), lambda *a: pq_variant(*a, pooled=True))]
    return run_check("check_pq", fn, cases,
                     N_("per category: a predicted and a target segment match when they share the category "
                        "and their IoU is above 0.5; count TP, FP, FN, then SQ, RQ and PQ of that category; "
                        "finally average over the categories that occur. Stuff is one segment per "
                        "category, whatever its instance ids."), mistakes, verbose=verbose)


@check("day6_instance_panoptic")
def check_grouping(fn, verbose=True):
    """``fn(centers, offset, thing_mask)``: centres (k, 2) as (y, x), offsets (2, H, W) as
    (dy, dx), thing_mask (H, W) bool -> instance ids (H, W): each thing pixel gets 1 + the index
    of the centre nearest to (y + dy, x + dx); 0 elsewhere (Panoptic-DeepLab's grouping).

    """

    yy, xx = np.mgrid[0:4, 0:6].astype(np.float32)
    centers = np.array([[1, 1], [2, 4]])
    # each pixel points to the centre of its own half (left: (1, 1), right: (2, 4))
    tgt = np.where(xx < 3, 0, 1)
    offset = np.stack([centers[tgt, 0] - yy, centers[tgt, 1] - xx]).astype(np.float32)
    mask = np.ones((4, 6), bool)
    mask[0, 0] = False
    rng = _rng(21)
    cases = [Case(N_("4x6, two centres, exact offsets, one stuff pixel"), (centers, offset, mask)),
             Case(N_("no centre at all"), (np.zeros((0, 2), np.int64), offset, mask))]
    for (h, w), k in [((9, 13), 3), ((16, 16), 6)]:
        cen = np.stack([rng.integers(0, h, k), rng.integers(0, w, k)], 1)
        off = rng.normal(0, 3, (2, h, w)).astype(np.float32)
        cases.append(Case(_("random {h}x{w}, {k} centres, noisy offsets").format(h=h, w=w, k=k),
                          (cen, off, rng.random((h, w)) < 0.6)))
    for c in cases:
        c.expected = group_pixels(*c.args).astype(np.int64)

    mistakes = [(N_("offsets are (dy, dx): the pixel points to (y + offset[0], x + offset[1])"),
                 lambda c, o, m: group_pixels(c, o[::-1], m)),
                (N_("add the offset (the pixel points *to* its centre): y + dy, not y - dy"),
                 lambda c, o, m: group_pixels(c, -o, m)),
                (N_("ids start at 1 (0 means 'no instance'): 1 + the index of the nearest centre"),
                 lambda c, o, m: np.where(m, group_pixels(c, o, m) - 1, 0)),
                (N_("only thing pixels get an instance: leave 0 where thing_mask is False"),
                 lambda c, o, m: group_pixels(c, o, np.ones_like(m))),
                (N_("centres are (y, x) like the offsets: compare y with y and x with x"),
                 lambda c, o, m: group_pixels(np.asarray(c)[:, ::-1], o, m))]
    return run_check("check_grouping", fn, cases,
                     N_("every thing pixel points to its position plus its offset; it joins the centre "
                        "nearest to that point (squared distance to every centre at once), numbered from 1; "
                        "pixels outside thing_mask, and every pixel when there is no centre, stay 0"), mistakes,
                     verbose=verbose)


def _link_ref(prev_masks, prev_labels, masks, labels, iou_thresh=0.1, method="hungarian"):
    """``common.video.link_instances`` on two frames, without motion: for each mask of the new
    frame, the index of the previous frame's mask it continues, or -1 (a new track)."""
    dets = [dict(masks=np.asarray(prev_masks, bool), labels=np.asarray(prev_labels)),
            dict(masks=np.asarray(masks, bool), labels=np.asarray(labels))]
    ids = link_instances(dets, iou_thresh=iou_thresh, motion=False, method=method)[1]
    return np.where(ids <= len(prev_masks), ids - 1, -1).astype(np.int64)


def _rects(shape, *boxes):
    """Boolean masks (n, H, W) of the boxes (y0, y1, x0, x1)."""
    out = np.zeros((len(boxes),) + shape, bool)
    for m, (y0, y1, x0, x1) in zip(out, boxes):
        m[y0:y1, x0:x1] = True
    return out


@check("day6_instance_panoptic")
def check_link(fn, verbose=True):
    """``fn(prev_masks, prev_labels, masks, labels, iou_thresh=0.1)``: the masks (n, H, W) and
    classes (n,) of the previous frame's tracks and the new frame's masks (m, H, W) and classes
    (m,) -> int array (m,): for each new mask, the index of the previous mask it continues, or
    -1 (a new track). The one-to-one assignment with the largest total IoU (Hungarian; IoU is 0
    between different classes); an assigned pair with IoU below ``iou_thresh`` is not linked.
    Checked against ``common.video.link_instances`` (without motion) on two frames.

    """
    cases = []
    convoy = convoy_clip(0, num_frames=2)["instance"]
    ids = [1, 2, 3, 4]
    disc = np.full(4, DISC, np.int64)
    cases.append(Case(N_("a convoy: identical discs, each close behind another (the best single pair is wrong)"),
                      (convoy[0][None] == np.array(ids)[:, None, None], disc,
                       convoy[1][None] == np.array(ids[::-1])[:, None, None], disc)))
    clip = make_clip(3, 10, 64, num_things=3)
    det = noisy_instances(clip["instance"], clip["labels"], seed=3, jitter=1)
    for t in (4, 7):
        cases.append(Case(_("a crossing clip, frames {t} -> {next}: shuffled, jittered masks").format(t=t, next=t + 1),
                          (det[t]["masks"], det[t]["labels"], det[t + 1]["masks"], det[t + 1]["labels"])))
    car, person = 5, 4
    prev = _rects((8, 16), (2, 6, 2, 6), (2, 6, 10, 14))
    new = _rects((8, 16), (2, 6, 3, 7), (2, 6, 10, 14), (2, 6, 2, 6))
    cases.append(Case(N_("classes: a person over the car's pixels does not continue the car"),
                      (prev, np.array([car, person]), new[:2], np.array([person, car]))))
    cases.append(Case(N_("one object moved, one unchanged, one new"),
                      (prev, np.array([car, person]), np.concatenate([new[[1, 0]], _rects((8, 16), (0, 2, 14, 16))]),
                       np.array([person, car, car]))))
    cases.append(Case(N_("iou_thresh=0.3: an assigned pair of IoU 0.2 starts a new track"),
                      (_rects((4, 16), (0, 4, 0, 6), (0, 4, 12, 16)), np.array([car, car]),
                       _rects((4, 16), (0, 4, 4, 10), (0, 4, 12, 15)), np.array([car, car])),
                      dict(iou_thresh=0.3)))
    cases.append(Case(N_("iou_thresh=0.5: IoU exactly 0.5 is linked (at least the threshold)"),
                      (_rects((4, 8), (0, 4, 0, 4)), np.array([car]), _rects((4, 8), (0, 4, 0, 2)),
                       np.array([car])), dict(iou_thresh=0.5)))
    cases.append(Case(N_("no previous tracks: every mask is new"),
                      (np.zeros((0, 8, 16), bool), np.zeros(0, np.int64), new, np.array([car, car, person]))))
    cases.append(Case(N_("no new masks"), (prev, np.array([car, person]), np.zeros((0, 8, 16), bool),
                                           np.zeros(0, np.int64))))
    for c in cases:
        c.expected = _link_ref(*c.args, **c.kwargs)

    def worst(pm, pl, m, lab, iou_thresh=0.1):
        out = np.full(len(m), -1, np.int64)
        if len(pm) and len(m):
            iou = mask_iou(pm, m) * (np.asarray(pl)[:, None] == np.asarray(lab)[None])
            for r, c in zip(*linear_sum_assignment(iou)):
                out[c] = r if iou[r, c] >= iou_thresh else -1
        return out

    def per_track(pm, pl, m, lab, iou_thresh=0.1):
        idx = _link_ref(pm, pl, m, lab, iou_thresh)
        out = np.full(len(pm), -1, np.int64)
        out[idx[idx >= 0]] = np.flatnonzero(idx >= 0)
        return out

    mistakes = [(N_("take the one-to-one assignment with the largest *total* IoU (the Hungarian algorithm, "
                    "scipy's linear_sum_assignment), not the best pair first: a convoy fools the greedy choice"),
                 lambda pm, pl, m, lab, iou_thresh=0.1: _link_ref(pm, pl, m, lab, iou_thresh, "greedy")),
                (N_("linear_sum_assignment *minimises* its cost: give it -IoU (or 1 - IoU), not IoU"), worst),
                (N_("IoU counts only between masks of the same class (set it to 0 across classes)"),
                 lambda pm, pl, m, lab, iou_thresh=0.1: _link_ref(pm, np.zeros(len(pm), np.int64), m,
                                                                  np.zeros(len(m), np.int64), iou_thresh)),
                (N_("after the assignment, drop the pairs whose IoU is below iou_thresh: those masks start "
                    "new tracks (-1)"), lambda pm, pl, m, lab, iou_thresh=0.1: _link_ref(pm, pl, m, lab, 0.0)),
                (N_("a pair with IoU equal to iou_thresh is linked (at least the threshold)"),
                 lambda pm, pl, m, lab, iou_thresh=0.1: _link_ref(pm, pl, m, lab, iou_thresh + 1e-9)),
                (N_("return one entry per *new* mask (its previous index), not one per previous mask"),
                 per_track),
                (N_("indices start at 0; -1 (not 0) marks a new track"),
                 lambda pm, pl, m, lab, iou_thresh=0.1: np.where(_link_ref(pm, pl, m, lab, iou_thresh) >= 0,
                                                                 _link_ref(pm, pl, m, lab, iou_thresh) + 1, 0))]
    return run_check("check_link", fn, cases,
                     N_("score every (previous, new) pair by mask IoU, 0 across classes; solve the "
                        "assignment that maximises the total IoU; keep an assigned pair only if its IoU "
                        "reaches iou_thresh; every other new mask gets -1. Empty inputs give -1s or an "
                        "empty array."), mistakes, verbose=verbose)
