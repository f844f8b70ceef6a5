"""Video segmentation: VOS (视频目标分割) by mask propagation, its J and F scores, and VIS
(视频实例分割) by linking per-frame instances into tracks.

- VOS, semi-supervised: the first frame's object masks are given; we carry them forward
  with dense optical flow (OpenCV Farneback): each pixel of frame t looks up, through the
  flow, where it was in frame t-1 and takes that pixel's label. Errors accumulate: that
  drift is what learned VOS models (memory, matching) fight.
- Scores (DAVIS): J = region similarity (IoU of the masks); F = boundary F-measure
  (precision and recall of boundary pixels, matched within a small tolerance).
- VIS: every frame has its own instances (here ground truth with noise, shuffled, or a
  model's output); tracks are formed by matching each frame's masks to the tracks' last
  masks, moved by their last velocity, by IoU with the Hungarian algorithm (one-to-one,
  globally best). An identity switch is a ground-truth object whose matched track id
  changes between frames.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from .metrics import mask_iou


# ----------------------------------------------------------------------------- VOS
def optical_flow(frame_to, frame_from):
    """Dense optical flow between two RGB frames (OpenCV Farneback).

    Args:
        frame_to: the current frame (H, W, 3) uint8.
        frame_from: the previous frame (H, W, 3) uint8.

    Returns:
        float32 (H, W, 2) as (dx, dy) such that ``frame_to[y, x] ~ frame_from[y + dy, x + dx]``.
    """
    a = cv2.cvtColor(np.asarray(frame_to, np.uint8), cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(np.asarray(frame_from, np.uint8), cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=9,
                                        iterations=3, poly_n=5, poly_sigma=1.1, flags=0)


def warp_labels(labels, flow):
    """Labels of the previous frame carried to the current one (a backward warp, nearest).

    Args:
        labels: (H, W) integer ids of the previous frame.
        flow: (H, W, 2) flow of ``optical_flow(current, previous)``.

    Returns:
        int32 (H, W): each pixel takes the label found where the flow says it came from
        (0 outside the frame).
    """
    h, w = labels.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(np.asarray(labels, np.float32), xx + flow[..., 0], yy + flow[..., 1],
                     interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=0).astype(np.int32)


def propagate_masks(frames, first_labels):
    """Semi-supervised VOS: the first frame's object ids propagated frame to frame with flow.

    Args:
        frames: (T, H, W, 3) uint8 frames.
        first_labels: (H, W) object ids of frame 0 (0 = background).

    Returns:
        int32 (T, H, W) object ids, frame 0 equal to ``first_labels``.
    """
    out = np.zeros((len(frames),) + np.asarray(first_labels).shape, np.int32)
    out[0] = first_labels
    for t in range(1, len(frames)):
        out[t] = warp_labels(out[t - 1], optical_flow(frames[t], frames[t - 1]))
    return out


def region_similarity(pred, gt):
    """J of DAVIS: the IoU of two masks.

    Args:
        pred: predicted mask (H, W), bool or 0/1.
        gt: true mask (H, W).

    Returns:
        float IoU (1.0 when both are empty).
    """
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    union = (pred | gt).sum()
    return float((pred & gt).sum() / union) if union else 1.0


def mask_boundary(mask):
    """Boundary pixels of a mask: the mask minus its erosion by a 3x3 cross.

    Args:
        mask: (H, W) bool or 0/1.

    Returns:
        bool (H, W).
    """
    m = np.asarray(mask, np.uint8)
    return m.astype(bool) & ~cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)),
                                       borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def boundary_f_measure(pred, gt, bound_th=0.008):
    """F of DAVIS: harmonic mean of boundary precision and recall. A predicted boundary
    pixel is right if a true boundary pixel lies within the tolerance, and vice versa.

    Args:
        pred: predicted mask (H, W).
        gt: true mask (H, W).
        bound_th: tolerance, a fraction of the image diagonal as in DAVIS (at least 1
            pixel); a value >= 1 is taken in pixels.

    Returns:
        float F (1.0 when both masks are empty, 0.0 when just one is).
    """
    pb, gb = mask_boundary(pred), mask_boundary(gt)
    if not pb.any() and not gb.any():
        return 1.0
    if not pb.any() or not gb.any():
        return 0.0
    h, w = pb.shape
    r = int(bound_th if bound_th >= 1 else max(1, np.ceil(bound_th * np.hypot(h, w))))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    gd = cv2.dilate(gb.astype(np.uint8), disk).astype(bool)
    pd = cv2.dilate(pb.astype(np.uint8), disk).astype(bool)
    precision = (pb & gd).sum() / pb.sum()
    recall = (gb & pd).sum() / gb.sum()
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


def j_and_f(pred, gt, ids=None, skip_first=True):
    """DAVIS scores of id maps: per object the mean J and F over frames, then means over objects.

    Args:
        pred: predicted ids (T, H, W).
        gt: true ids (T, H, W), 0 = background.
        ids: the objects to score (default: every non-zero id of ``gt``).
        skip_first: leave out frame 0 (given in semi-supervised VOS).

    Returns:
        dict ``J``, ``F``, ``JF`` (their mean) and ``per_object`` {id: (J, F)}.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    ids = sorted(int(i) for i in np.unique(gt) if i != 0) if ids is None else list(ids)
    frames = range(1 if skip_first else 0, len(gt))
    per = {}
    for i in ids:
        js = [region_similarity(pred[t] == i, gt[t] == i) for t in frames]
        fs = [boundary_f_measure(pred[t] == i, gt[t] == i) for t in frames]
        per[i] = (float(np.mean(js)), float(np.mean(fs)))
    J = float(np.mean([v[0] for v in per.values()])) if per else float("nan")
    F = float(np.mean([v[1] for v in per.values()])) if per else float("nan")
    return dict(J=J, F=F, JF=(J + F) / 2, per_object=per)


# ----------------------------------------------------------------------------- VIS
def noisy_instances(instance, labels, seed=0, jitter=1, drop=0.0, min_area=4):
    """Stand-in per-frame detections made from ground-truth ids, in a shuffled order (no id leaks).

    Args:
        instance: true ids (T, H, W), 0 = background.
        labels: {id: class}.
        seed: seed of the noise and the order.
        jitter: each mask is eroded or dilated by up to this many pixels.
        drop: probability of missing an object in a frame.
        min_area: masks smaller than this (after erosion) are left out.

    Returns:
        list (one per frame) of dicts ``masks`` (n, H, W) bool, ``labels`` (n,), ``scores`` (n,).
    """
    rng = np.random.default_rng(seed)
    out = []
    for frame in np.asarray(instance):
        masks, labs = [], []
        for i in np.unique(frame):
            if i == 0 or rng.random() < drop:
                continue
            m = (frame == i).astype(np.uint8)
            k = int(rng.integers(-jitter, jitter + 1))
            if k:
                kernel = np.ones((2 * abs(k) + 1,) * 2, np.uint8)
                m = cv2.dilate(m, kernel) if k > 0 else cv2.erode(m, kernel)
            if m.sum() >= min_area:
                masks.append(m.astype(bool))
                labs.append(labels[int(i)])
        order = rng.permutation(len(masks))
        h, w = frame.shape
        out.append(dict(masks=np.array([masks[o] for o in order], bool).reshape(-1, h, w),
                        labels=np.array([labs[o] for o in order], np.int64),
                        scores=rng.uniform(0.5, 1.0, len(masks)).astype(np.float32)))
    return out


def _centroid(mask):
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()]) if len(xs) else np.zeros(2)


def _shift(mask, d):
    """Mask translated by d = (dx, dy) pixels."""
    h, w = mask.shape
    m = np.float32([[1, 0, d[0]], [0, 1, d[1]]])
    return cv2.warpAffine(mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST).astype(bool)


def link_instances(detections, iou_thresh=0.1, max_age=3, method="hungarian", motion=True,
                   occluded=0.6):
    """Track ids for per-frame instances (VIS linking).

    Each live track predicts its mask in the new frame (its last mask, moved by its last
    velocity times the frames since it was seen, if ``motion``). Cost = 1 - IoU (IoU 0
    between different classes); ``method`` 'hungarian' solves the one-to-one assignment
    (``scipy.optimize.linear_sum_assignment``), 'greedy' takes the best pairs first.
    Pairs with IoU < ``iou_thresh`` are not linked; an unmatched detection starts a new
    track; a track unseen for more than ``max_age`` frames ends (so an object hidden for
    a frame or two, e.g. while another crosses in front, keeps its id). A matched
    detection smaller than ``occluded`` x the track's mask is taken as partly hidden: the
    track keeps its whole (moved) shape and velocity instead.

    Args:
        detections: list (one per frame) of dicts with ``masks`` (n, H, W) and ``labels`` (n,).
        iou_thresh: pairs below this IoU are not linked.
        max_age: frames a track survives unseen.
        method: 'hungarian' or 'greedy'.
        motion: move each track's mask by its velocity before matching.
        occluded: a matched mask smaller than this fraction of the track's mask counts as
            partly hidden.

    Returns:
        list (one per frame) of int64 arrays of track ids aligned with that frame's masks.
    """
    tracks = []          # dicts: id, mask, velocity, label, age
    next_id, result = 1, []
    for det in detections:
        masks, labels = np.asarray(det["masks"], bool), np.asarray(det["labels"])
        ids = np.zeros(len(masks), np.int64)
        if tracks and len(masks):
            pred = np.stack([_shift(t["mask"], t["velocity"] * (t["age"] + 1)) if motion else t["mask"]
                             for t in tracks])
            iou = mask_iou(pred, masks) * (np.array([t["label"] for t in tracks])[:, None] == labels[None])
            if method == "hungarian":
                rows, cols = linear_sum_assignment(1 - iou)
            elif method == "greedy":
                rows, cols, used_r, used_c = [], [], set(), set()
                for flat in np.argsort(-iou, axis=None, kind="mergesort"):
                    r, c = divmod(int(flat), iou.shape[1])
                    if r not in used_r and c not in used_c:
                        rows.append(r)
                        cols.append(c)
                        used_r.add(r)
                        used_c.add(c)
            else:
                raise ValueError(f"method must be 'hungarian' or 'greedy', got {method!r}")
            for r, c in zip(rows, cols):
                if iou[r, c] >= iou_thresh:
                    t = tracks[r]
                    if masks[c].sum() >= occluded * t["mask"].sum():
                        t["velocity"] = (_centroid(masks[c]) - _centroid(t["mask"])) / (t["age"] + 1)
                        t["mask"] = masks[c]
                    else:
                        # much smaller than before: partly hidden. Keep the whole shape, moved
                        # as predicted, and the velocity (the fragment's centroid would lie).
                        t["mask"] = pred[r]
                    t["age"] = -1
                    ids[c] = t["id"]
        for c in np.flatnonzero(ids == 0):
            tracks.append(dict(id=next_id, mask=masks[c], velocity=np.zeros(2), label=labels[c], age=-1))
            ids[c] = next_id
            next_id += 1
        for t in tracks:
            t["age"] += 1
        tracks = [t for t in tracks if t["age"] <= max_age]
        result.append(ids)
    return result


def id_switches(detections, track_ids, gt_instance, iou_thresh=0.5):
    """Identity switches as in CLEAR MOT: per frame, detections are matched one-to-one to the
    true objects (Hungarian, IoU >= ``iou_thresh``); a switch is counted when an object's
    matched track id differs from the one it last had.

    Args:
        detections: the per-frame detections given to ``link_instances``.
        track_ids: its output.
        gt_instance: true ids (T, H, W).
        iou_thresh: minimum IoU of a detection and its object.

    Returns:
        (switches, fraction of object-frames matched).
    """
    last, switches, matched, total = {}, 0, 0, 0
    for det, ids, frame in zip(detections, track_ids, np.asarray(gt_instance)):
        gt_ids = [int(i) for i in np.unique(frame) if i != 0]
        total += len(gt_ids)
        if not gt_ids or not len(ids):
            continue
        iou = mask_iou(np.asarray(det["masks"], bool), frame[None] == np.array(gt_ids)[:, None, None])
        rows, cols = linear_sum_assignment(-iou)
        for r, c in zip(rows, cols):
            if iou[r, c] < iou_thresh:
                continue
            g, tid = gt_ids[c], int(ids[r])
            matched += 1
            if g in last and last[g] != tid:
                switches += 1
            last[g] = tid
    return switches, matched / max(total, 1)


def track_map(detections, track_ids, shape):
    """Id maps of tracks, for display and for ``j_and_f``.

    Args:
        detections: the per-frame detections.
        track_ids: ``link_instances``'s ids for them.
        shape: (H, W) of a frame.

    Returns:
        int32 (T, H, W), 0 where no track (later masks drawn over earlier ones).
    """
    out = np.zeros((len(detections),) + tuple(shape), np.int32)
    for t, (det, ids) in enumerate(zip(detections, track_ids)):
        for m, i in zip(np.asarray(det["masks"], bool), ids):
            out[t][m] = i
    return out
