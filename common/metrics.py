"""Segmentation metrics, computed exactly from a confusion matrix.

Conventions (tested in tests/lib/test_metrics.py):

- ``confusion_matrix``: rows are ground truth, columns are prediction. Pixels whose label
  is ``ignore_index`` are not counted at all (neither as right nor as wrong). A predicted
  value outside ``[0, K)`` is an error (it would silently vanish otherwise).
- IoU of class c = TP / (TP + FP + FN). A class absent from both prediction and label has
  0/0: its IoU is NaN and mIoU (``nanmean``) skips it, instead of counting it as a perfect
  1 that would inflate the mean. A class in the label but never predicted has IoU 0; a
  class predicted but absent from the label has IoU 0 too (all its pixels are FP).
- Per-class accuracy (recall) = TP / (TP + FN), NaN when the class is absent from the
  label; mAcc is the NaN-mean. Pixel accuracy = trace / total.
- With a streaming ``SegMetric`` the matrix is summed over the whole dataset first and the
  scores are computed once: "dataset mIoU", the standard for PASCAL VOC / Cityscapes.
"""
from __future__ import annotations

import numpy as np

from .labels import LABEL_DIVISOR


def _to_numpy(x):
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x)


def _class_indices(v, name):
    """``v`` flattened to int64. Floats must hold whole numbers: casting would floor a
    probability or a bilinearly resized label into a wrong class without a word."""
    if v.dtype.kind == "f":
        if not np.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        frac = v[v != np.round(v)]
        if frac.size:
            raise ValueError(f"{name} has non-integral values (e.g. {frac[:3].tolist()}): pass class "
                             "indices (the argmax of probabilities; resize labels with nearest "
                             "neighbour), not probabilities or an interpolated label")
    elif v.dtype.kind not in "biu":
        raise ValueError(f"{name} must hold integer class indices, got dtype {v.dtype}")
    return v.astype(np.int64).ravel()


def confusion_matrix(pred, label, num_classes, ignore_index=255):
    """(K, K) int64 counts: ``conf[gt, pred]``. ``pred`` and ``label`` share one shape.

    Both hold class indices: integers, or floats with whole values (2.0); a fractional or
    NaN value is refused (ValueError), as is a value outside ``[0, K)`` other than a
    label's ``ignore_index``.

    Args:
        pred: predicted class indices, any shape (NumPy array or Paddle tensor).
        label: ground-truth class indices, the same shape.
        num_classes: K.
        ignore_index: label value whose pixels are not counted (255, VOC's void border).

    Returns:
        int64 array (K, K), ``conf[gt, pred]`` pixel counts.
    """
    pred, label = _to_numpy(pred), _to_numpy(label)
    if pred.shape != label.shape:
        raise ValueError(f"pred shape {pred.shape} differs from label shape {label.shape}")
    pred, label = _class_indices(pred, "pred"), _class_indices(label, "label")
    keep = label != ignore_index
    pred, label = pred[keep], label[keep]
    k = int(num_classes)
    for name, v in (("label", label), ("pred", pred)):
        if v.size and (v.min() < 0 or v.max() >= k):
            bad = np.unique(v[(v < 0) | (v >= k)])[:10]
            raise ValueError(f"{name} values {bad.tolist()} are outside [0, {k}) "
                             f"(and not ignore_index={ignore_index})")
    return np.bincount(label * k + pred, minlength=k * k).reshape(k, k)


def segmentation_scores(conf):
    """Scores from a confusion matrix: iou, miou, acc, macc, pixel_acc, kappa, dice.

    ``iou``/``acc``/``dice`` are per-class arrays with NaN where undefined (see module doc).
    ``conf`` must be square, finite and non-negative (ValueError otherwise).

    Args:
        conf: (K, K) confusion matrix, rows ground truth, columns prediction.

    Returns:
        dict with ``iou``, ``acc``, ``dice`` (float64 (K,) arrays), ``miou`` and ``macc``
        (their NaN-means) and ``pixel_acc``, ``kappa`` (floats).
    """
    conf = np.asarray(conf, np.float64)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"conf must be a square (K, K) confusion matrix, got shape {conf.shape}")
    if not np.isfinite(conf).all():
        raise ValueError("conf must hold finite counts (it contains NaN or infinity)")
    if (conf < 0).any():
        raise ValueError(f"conf holds negative counts (min {conf.min():g}); it must count pixels")
    tp = np.diag(conf)
    gt = conf.sum(1)        # TP + FN
    pr = conf.sum(0)        # TP + FP
    total = conf.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        union = gt + pr - tp
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
        dice = np.where(gt + pr > 0, 2 * tp / (gt + pr), np.nan)
        pixel_acc = tp.sum() / total if total else np.nan
        expected = (gt * pr).sum() / total ** 2 if total else np.nan
        kappa = (pixel_acc - expected) / (1 - expected) if total and expected < 1 else np.nan
    nanmean = lambda a: float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")  # noqa: E731
    return dict(iou=iou, miou=nanmean(iou), acc=acc, macc=nanmean(acc),
                pixel_acc=float(pixel_acc), kappa=float(kappa), dice=dice)


class SegMetric:
    """Streaming confusion matrix: ``update(pred, label)`` per batch, ``compute()`` at the end.

    Args:
        num_classes: K.
        ignore_index: label value that is not counted.
    """

    def __init__(self, num_classes, ignore_index=255):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.reset()

    def reset(self):
        self.conf = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, pred, label):
        self.conf += confusion_matrix(pred, label, self.num_classes, self.ignore_index)
        return self

    def compute(self):
        return segmentation_scores(self.conf)


# ============================================================================
# Instance and panoptic metrics (Day 6): mask IoU, matching, mask AP, PQ
# ============================================================================
#
# Conventions (tested in tests/lib/test_panoptic_metrics.py):
#
# - An instance prediction of one image is a dict ``masks`` (n, H, W) bool, ``labels``
#   (n,) int, ``scores`` (n,) float; a ground truth is the same without ``scores``.
# - ``mask_ap_at`` is COCO's AP for one IoU threshold, written out: detections of one
#   class, sorted by score over all images, each matched to the unmatched ground truth
#   of highest IoU (>= threshold) in its image, precision made monotone, then read at
#   the 101 recall points 0, 0.01, ..., 1. ``mask_ap`` asks pycocotools for the same at
#   the ten thresholds 0.50:0.05:0.95; both agree where they overlap.
# - ``panoptic_quality`` follows the COCO panoptic rules (Kirillov et al., CVPR 2019).


def mask_iou(masks_a, masks_b):
    """IoU matrix (n, m) between boolean masks (n, H, W) and (m, H, W), as one matmul.

    Args:
        masks_a: n masks (n, H, W), anything ``np.asarray(..., bool)`` takes.
        masks_b: m masks of the same size.

    Returns:
        float64 array (n, m); 0 where both masks are empty.
    """
    a, b = np.asarray(masks_a, bool), np.asarray(masks_b, bool)
    a = a.reshape(len(a), int(np.prod(a.shape[1:]))).astype(np.float64)
    b = b.reshape(len(b), int(np.prod(b.shape[1:]))).astype(np.float64)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def match_instances(iou, iou_thresh=0.5, scores=None):
    """Greedy COCO matching of predictions (rows of ``iou``) to ground truths (columns).

    Predictions go in descending ``scores`` order (given order if None); each takes the
    still-unmatched ground truth of highest IoU, if that IoU >= ``iou_thresh``.
    Returns ``gt_of_pred`` (n,) with the matched column or -1.
    """
    iou = np.asarray(iou, np.float64)
    n, m = iou.shape
    order = np.arange(n) if scores is None else np.argsort(-np.asarray(scores), kind="mergesort")
    gt_of_pred = np.full(n, -1, np.int64)
    taken = np.zeros(m, bool)
    for d in order:
        cand = np.where(taken, -1.0, iou[d])
        if m and cand.max() >= iou_thresh:
            g = int(cand.argmax())
            gt_of_pred[d], taken[g] = g, True
    return gt_of_pred


def _average_precision_101(tp, num_gt):
    """COCO's interpolated AP from the TP flags of score-sorted detections."""
    tp = np.asarray(tp, np.float64)
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / num_gt
    precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    # precision at the first rank whose recall reaches r, for r = 0, 0.01, ..., 1 (0 if never)
    idx = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    q = np.zeros(101)
    q[idx < len(precision)] = precision[idx[idx < len(precision)]]
    return float(np.mean(q))


def mask_ap_at(preds, gts, iou_thresh=0.5, category=None, max_dets=100):
    """Mask AP at one IoU threshold, by hand (see the conventions above).

    ``category`` None: mean over the classes that have ground truth (as COCO). A class
    with ground truth but no detection has AP 0.

    Args:
        preds: per image a dict ``masks`` (n, H, W) bool, ``labels`` (n,), ``scores`` (n,).
        gts: per image a dict ``masks``, ``labels`` (same images, same order).
        iou_thresh: a detection is a true positive at mask IoU >= this.
        category: one class id, or None for the mean over the classes with ground truth.
        max_dets: detections kept per image, highest scores first (COCO's 100).

    Returns:
        float AP in [0, 1]; NaN when no ground truth of ``category`` exists.
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth images")
    if category is None:
        cats = sorted({int(c) for g in gts for c in np.asarray(g["labels"])})
        return float(np.mean([mask_ap_at(preds, gts, iou_thresh, c, max_dets) for c in cats])) \
            if cats else float("nan")
    all_scores, all_tp, num_gt = [], [], 0
    for p, g in zip(preds, gts):
        gm = np.asarray(g["masks"], bool)[np.asarray(g["labels"]) == category]
        keep = np.asarray(p["labels"]) == category
        pm, ps = np.asarray(p["masks"], bool)[keep], np.asarray(p["scores"], np.float64)[keep]
        order = np.argsort(-ps, kind="mergesort")[:max_dets]     # COCO keeps the top 100
        pm, ps = pm[order], ps[order]
        num_gt += len(gm)
        matched = match_instances(mask_iou(pm, gm), iou_thresh) if len(pm) else np.zeros(0, int)
        all_scores.append(ps)
        all_tp.append(matched >= 0)
    if num_gt == 0:
        return float("nan")
    scores, tp = np.concatenate(all_scores), np.concatenate(all_tp)
    order = np.argsort(-scores, kind="mergesort")
    return _average_precision_101(tp[order], num_gt)


def _coco_from_instances(gts, preds):
    """In-memory COCO ground truth dict and result list (RLE masks) for pycocotools."""
    from pycocotools import mask as mask_utils

    def rle(m):
        return mask_utils.encode(np.asfortranarray(np.asarray(m, np.uint8)))

    images, anns, cats, dets = [], [], set(), []
    for i, (g, p) in enumerate(zip(gts, preds)):
        masks = np.asarray(g["masks"], bool)
        h, w = masks.shape[1:] if masks.ndim == 3 and len(masks) else np.asarray(p["masks"]).shape[1:]
        images.append(dict(id=i + 1, height=int(h), width=int(w)))
        for m, c in zip(masks, np.asarray(g["labels"])):
            r = rle(m)
            # ids start at 1: pycocotools uses id 0 to mean "unmatched"
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=int(c), segmentation=r,
                             area=float(m.sum()), bbox=list(mask_utils.toBbox(r)), iscrowd=0))
            cats.add(int(c))
        for m, c, s in zip(np.asarray(p["masks"], bool), np.asarray(p["labels"]), np.asarray(p["scores"])):
            dets.append(dict(image_id=i + 1, category_id=int(c), segmentation=rle(m), score=float(s)))
            cats.add(int(c))
    dataset = dict(images=images, annotations=anns, categories=[dict(id=c, name=str(c)) for c in sorted(cats)])
    return dataset, dets


def mask_ap(preds, gts, iou_thresholds=None):
    """COCO mask AP through pycocotools: dict ``ap`` (AP@[.5:.95]), ``ap50``, ``ap75`` and
    ``per_class`` {category: AP@[.5:.95]} over classes with ground truth.

    Args:
        preds: per image a dict ``masks`` (n, H, W) bool, ``labels`` (n,), ``scores`` (n,).
        gts: per image a dict ``masks``, ``labels`` (same images, same order).
        iou_thresholds: IoU thresholds to average over; default COCO's 0.50:0.05:0.95.

    Returns:
        dict ``ap``, ``ap50``, ``ap75`` (floats; NaN for a threshold not evaluated) and
        ``per_class``.
    """
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth images")
    dataset, dets = _coco_from_instances(gts, preds)
    gt_cats = sorted({a["category_id"] for a in dataset["annotations"]})
    if not gt_cats:
        raise ValueError("mask_ap: the ground truth holds no instance")
    if not dets:        # pycocotools cannot load an empty result list: nothing found = AP 0
        return dict(ap=0.0, ap50=0.0, ap75=0.0, per_class={c: 0.0 for c in gt_cats})
    with contextlib.redirect_stdout(io.StringIO()):      # pycocotools prints progress
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, iouType="segm")
        if iou_thresholds is not None:
            ev.params.iouThrs = np.asarray(iou_thresholds, np.float64)
        ev.params.catIds = gt_cats
        # only area 'all' at 100 detections is read below: the other three area ranges and the
        # 1- and 10-detection limits would each repeat the matching (the same numbers in half the time)
        ev.params.areaRng, ev.params.areaRngLbl, ev.params.maxDets = ev.params.areaRng[:1], ["all"], [100]
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][:, :, :, 0, 0]         # (T, R, K) at area 'all', maxDets 100

    def mean_valid(a):
        a = a[a > -1]
        return float(a.mean()) if a.size else float("nan")

    thr = ev.params.iouThrs
    at = lambda t: mean_valid(prec[np.isclose(thr, t)]) if np.isclose(thr, t).any() else float("nan")  # noqa: E731
    return dict(ap=mean_valid(prec), ap50=at(0.5), ap75=at(0.75),
                per_class={c: mean_valid(prec[:, :, k]) for k, c in enumerate(gt_cats)})


def _segments(pan, things, cats, label_divisor):
    """Segment id per pixel (-1 = void): stuff pixels lose their instance id."""
    cat = np.floor_divide(pan, label_divisor)
    seg = np.where(np.isin(cat, things), pan, cat * label_divisor)
    return np.where(np.isin(cat, cats), seg, -1)


def panoptic_quality(pred, target, things, stuffs, label_divisor=LABEL_DIVISOR, crowd=()):
    """Panoptic quality PQ = SQ x RQ (COCO panoptic rules), per class and averaged.

    ``pred``/``target``: integer maps (H, W) or (N, H, W) of ``category * label_divisor +
    instance``. A segment is a (category, instance) of a thing or a whole stuff category.
    Per image, a predicted and a target segment of one category match when IoU > 0.5
    (then unique). Void: a target pixel whose category is in neither ``things`` nor
    ``stuffs``; the pixels a prediction puts on void leave its IoU's union, and an unmatched
    prediction lying more than half on void is not a false positive. A predicted pixel of a
    category in neither set is "no prediction" (unlabelled). Per class c over all images:
    SQ = mean IoU of the matches, RQ = TP / (TP + FP/2 + FN/2), PQ = SQ x RQ.
    Crowd: ``crowd`` lists target segment values (``category * label_divisor + id``) that
    are crowd regions (COCO's ``iscrowd``): they are never matched and never a false
    negative, and an unmatched prediction of the same category lying more than half on
    void plus that category's crowd pixels is not a false positive.

    Args:
        pred: predicted panoptic map, integer (H, W) or (N, H, W).
        target: ground-truth panoptic map, same shape.
        things: category ids of the thing classes.
        stuffs: category ids of the stuff classes.
        label_divisor: the encoding's divisor (``common.labels.LABEL_DIVISOR``).
        crowd: target segment values that are crowd regions.

    Returns:
        dict ``pq``, ``sq``, ``rq`` (means over the classes that occur, i.e. with any TP, FP
        or FN), ``per_class`` {category: (pq, sq, rq)}, ``things`` and ``stuff`` (pq, sq, rq)
        triples over those classes (NaN when none occur), and ``counts``
        {category: (tp, fp, fn)}.
    """
    pred, target = _to_numpy(pred).astype(np.int64), _to_numpy(target).astype(np.int64)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
    things, stuffs = [int(c) for c in things], [int(c) for c in stuffs]
    if set(things) & set(stuffs):
        raise ValueError(f"categories {sorted(set(things) & set(stuffs))} are both thing and stuff")
    cats = things + stuffs
    if pred.ndim == 2:
        pred, target = pred[None], target[None]
    tp, fp, fn = dict.fromkeys(cats, 0), dict.fromkeys(cats, 0), dict.fromkeys(cats, 0)
    iou_sum = dict.fromkeys(cats, 0.0)
    for p_map, t_map in zip(pred, target):
        t_seg = _segments(t_map, things, cats, label_divisor).ravel()
        p_seg = _segments(p_map, things, cats, label_divisor).ravel()
        g_ids, g_idx = np.unique(t_seg, return_inverse=True)
        p_ids, p_idx = np.unique(p_seg, return_inverse=True)
        # np.unique sorts, so void (-1), when present, is index 0 of either side
        g_void, p_void = g_ids[0] == -1, p_ids[0] == -1
        G, P = len(g_ids), len(p_ids)
        counts = np.bincount(g_idx * P + p_idx, minlength=G * P).reshape(G, P)
        gs, ps = slice(int(g_void), G), slice(int(p_void), P)
        inter = counts[gs, ps]
        g_area, p_area = counts[gs].sum(1), counts[:, ps].sum(0)
        p_on_void = counts[0, ps] if g_void else np.zeros(P - int(p_void), np.int64)
        g_cat, p_cat = g_ids[gs] // label_divisor, p_ids[ps] // label_divisor
        union = g_area[:, None] + p_area[None, :] - inter - p_on_void[None, :]
        iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
        same_cat = g_cat[:, None] == p_cat[None, :]
        is_crowd = np.isin(g_ids[gs], np.asarray(crowd, np.int64))
        match = (iou > 0.5) & same_cat & ~is_crowd[:, None]
        gi, pi = np.nonzero(match)
        for g, p in zip(gi, pi):
            tp[int(g_cat[g])] += 1
            iou_sum[int(g_cat[g])] += float(iou[g, p])
        g_free = ~match.any(1) & ~is_crowd
        p_on_crowd = (inter * (same_cat & is_crowd[:, None])).sum(0)
        p_free = ~match.any(0) & (p_on_void + p_on_crowd <= 0.5 * p_area)
        for c in g_cat[g_free]:
            fn[int(c)] += 1
        for c in p_cat[p_free]:
            fp[int(c)] += 1

    per_class, counts_out = {}, {}
    for c in cats:
        if tp[c] + fp[c] + fn[c] == 0:
            continue
        sq = iou_sum[c] / tp[c] if tp[c] else 0.0
        rq = tp[c] / (tp[c] + 0.5 * fp[c] + 0.5 * fn[c])
        per_class[c] = (sq * rq, sq, rq)
        counts_out[c] = (tp[c], fp[c], fn[c])

    def mean_over(group):
        rows = [per_class[c] for c in group if c in per_class]
        return tuple(float(v) for v in np.mean(rows, 0)) if rows else (float("nan"),) * 3

    pq, sq, rq = mean_over(cats)
    return dict(pq=pq, sq=sq, rq=rq, per_class=per_class, things=mean_over(things),
                stuff=mean_over(stuffs), counts=counts_out)


# ============================================================================
# Boundary F-score of a semantic segmentation (Day 2: what FCN's skips buy)
# ============================================================================

def _label_boundaries(x, valid):
    """Pixels of ``x`` (N, H, W) with a 4-neighbour inside the image that holds another
    value; both pixels must be ``valid``. The image border is not a boundary."""
    b = np.zeros(x.shape, bool)
    for axis in (1, 2):
        n = x.shape[axis]
        a, c = [slice(None)] * 3, [slice(None)] * 3
        a[axis], c[axis] = slice(0, n - 1), slice(1, n)
        a, c = tuple(a), tuple(c)
        d = (x[a] != x[c]) & valid[a] & valid[c]
        b[a] |= d          # each side of a change is a boundary pixel of its own class
        b[c] |= d
    return b


def boundary_f_score(pred, label, num_classes, tolerance=2, ignore_index=255):
    """Per-class boundary F-score (Csurka et al., BMVC 2013), summed over a dataset.

    A boundary pixel of class c is a pixel of class c with a 4-neighbour of another class
    (pixels labelled ``ignore_index`` and the pixels of ``pred`` over them take no part).
    A predicted boundary pixel of class c is right when a true boundary pixel of class c
    lies within ``tolerance`` pixels (Euclidean, per image); precision = right / predicted,
    recall likewise from the true side, F = 2PR / (P + R). Counts are summed over the
    images before dividing (like dataset mIoU).

    Args:
        pred: (H, W) or (N, H, W) integer class map, the prediction.
        label: the ground truth, same shape.
        num_classes: K.
        tolerance: match distance in pixels (>= 0; 0 = the same pixel).
        ignore_index: label value excluded from scoring.

    Returns:
        dict ``f`` (mean of the per-class F over classes with a boundary in the label or the
        prediction), ``per_class`` F (K,), ``precision`` (K,), ``recall`` (K,): NaN where
        undefined (no boundary of that class on the side divided by; F is NaN only when
        neither side has one, and 0 when just one side has).
    """
    from scipy import ndimage as ndi

    pred, label = _to_numpy(pred), _to_numpy(label)
    if pred.shape != label.shape:
        raise ValueError(f"pred shape {pred.shape} differs from label shape {label.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"pred and label must be (H, W) or (N, H, W), got shape {pred.shape}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}")
    shape = pred.shape if pred.ndim == 3 else (1,) + pred.shape
    pred = _class_indices(pred, "pred").reshape(shape)
    label = _class_indices(label, "label").reshape(shape)
    confusion_matrix(pred, label, num_classes, ignore_index)      # same range checks
    valid = label != ignore_index
    gb = _label_boundaries(label, valid)
    pb = _label_boundaries(pred, valid)
    r = int(np.floor(tolerance))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (yy ** 2 + xx ** 2 <= tolerance ** 2)[None]           # no reach across images
    k = int(num_classes)
    prec, rec, f = (np.full(k, np.nan) for _ in range(3))
    for c in range(k):
        g, p = gb & (label == c), pb & (pred == c)
        ng, np_ = int(g.sum()), int(p.sum())
        if ng == 0 and np_ == 0:
            continue
        if np_:
            prec[c] = (p & ndi.binary_dilation(g, disk)).sum() / np_ if ng else 0.0
        if ng:
            rec[c] = (g & ndi.binary_dilation(p, disk)).sum() / ng if np_ else 0.0
        pc, rc = np.nan_to_num(prec[c]), np.nan_to_num(rec[c])
        f[c] = 2 * pc * rc / (pc + rc) if pc + rc > 0 else 0.0
    return dict(f=float(np.nanmean(f)) if np.isfinite(f).any() else float("nan"),
                per_class=f, precision=prec, recall=rec)
