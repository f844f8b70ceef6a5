"""Box operations of the top-down (proposal-based) models of Day 6 (Mask R-CNN, UPSNet).

- anchors (锚框): ``cell_anchors``, ``grid_anchors``;
- box maths: ``box_area``, ``box_iou`` (交并比), ``clip_boxes``, ``encode_boxes`` /
  ``decode_boxes`` (边框回归), ``smooth_l1`` (their regression loss);
- matching and sampling: ``match_boxes``, ``sample_labels``;
- NMS (非极大值抑制): ``nms_numpy``, the greedy reference written out, and ``batched_nms``,
  the one the models use (Paddle's kernel, per class or level);
- RoIAlign: ``roi_align_numpy``, the reference of ``paddle.vision.ops.roi_align``;
- masks and boxes: ``crop_and_resize`` (mask targets), ``paste_masks`` (back into the image),
  ``boxes_inside``.

Conventions: boxes are ``(x0, y0, x1, y1)`` in pixels with ``x1, y1`` exclusive (a box
``(0, 0, 1, 1)`` covers pixel (0, 0) exactly), pixel centres at ``i + 0.5``. The helpers
take and return ``paddle.Tensor`` (NumPy arrays are accepted), except the two ``*_numpy``
references, which take and return NumPy arrays; none of them needs gradients except
``paste_masks`` and ``smooth_l1``.
"""
from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle.vision.ops import nms as _paddle_nms
from paddle.vision.ops import roi_align

__all__ = ["cell_anchors", "grid_anchors", "box_area", "box_iou", "clip_boxes", "encode_boxes",
           "decode_boxes", "smooth_l1", "match_boxes", "sample_labels", "batched_nms", "nms_numpy",
           "roi_align_numpy", "crop_and_resize", "paste_masks", "boxes_inside"]

# A decoded width or height never exceeds exp(this) times its reference (Detectron's clamp).
_DELTA_CLAMP = math.log(1000.0 / 16)


def _t(x, dtype="float32"):
    return x if isinstance(x, paddle.Tensor) else paddle.to_tensor(np.asarray(x), dtype=dtype)


# ------------------------------------------------------------------ anchors
def cell_anchors(sizes, ratios):
    """The anchors centred on (0, 0): every size with every aspect ratio h / w, each of
    area size**2 (Faster R-CNN).

    Args:
        sizes: anchor sizes (square root of the area) in pixels.
        ratios: aspect ratios h / w.

    Returns:
        float32 array (len(sizes) * len(ratios), 4), sizes outer, ratios inner.
    """
    out = []
    for s in sizes:
        for r in ratios:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            out.append([-w / 2, -h / 2, w / 2, h / 2])
    return np.array(out, np.float32)


def grid_anchors(feat_size, stride, sizes, ratios):
    """The anchors of one feature map: the cell anchors moved to each cell's centre
    ``((x + 0.5) * stride, (y + 0.5) * stride)``.

    Args:
        feat_size: (H, W) of the feature map.
        stride: its stride in image pixels.
        sizes: anchor sizes, as ``cell_anchors``.
        ratios: aspect ratios h / w.

    Returns:
        float32 array (H * W * A, 4) in (y, x, a) order, the order of an RPN output
        ``(N, A, H, W)`` permuted to ``(N, H, W, A)`` and flattened.
    """
    h, w = feat_size
    cy, cx = np.meshgrid((np.arange(h) + 0.5) * stride, (np.arange(w) + 0.5) * stride, indexing="ij")
    shifts = np.stack([cx, cy, cx, cy], -1).reshape(-1, 1, 4).astype(np.float32)
    return (shifts + cell_anchors(sizes, ratios)[None]).reshape(-1, 4)


# -------------------------------------------------------------- box algebra
def box_area(boxes):
    """Areas of boxes; an inverted box has area 0.

    Args:
        boxes: (R, 4).

    Returns:
        float32 tensor (R,).
    """
    boxes = _t(boxes)
    return (boxes[:, 2] - boxes[:, 0]).clip(min=0) * (boxes[:, 3] - boxes[:, 1]).clip(min=0)


def box_iou(a, b):
    """Pairwise IoU (交并比) of two sets of boxes.

    Args:
        a: (n, 4) boxes (tensor or array).
        b: (m, 4) boxes.

    Returns:
        float32 tensor (n, m); 0 between boxes that do not overlap.
    """
    a, b = _t(a), _t(b)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return paddle.zeros([a.shape[0], b.shape[0]])
    lt = paddle.maximum(a[:, None, :2], b[None, :, :2])
    rb = paddle.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clip(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union.clip(min=1e-9)


def clip_boxes(boxes, size):
    """Clip boxes to the image.

    Args:
        boxes: (R, 4) tensor.
        size: (H, W).

    Returns:
        (R, 4) tensor with x in [0, W], y in [0, H].
    """
    h, w = size
    return paddle.stack([boxes[:, 0].clip(0, w), boxes[:, 1].clip(0, h),
                         boxes[:, 2].clip(0, w), boxes[:, 3].clip(0, h)], 1)


def encode_boxes(ref, gt, weights=(1.0, 1.0, 1.0, 1.0)):
    """Regression targets (边框回归) that move each box ``ref`` onto its ``gt``: the centre
    shift in units of the reference size and the log of the size ratio (Faster R-CNN).

    Args:
        ref: (R, 4) reference boxes (anchors, proposals).
        gt: (R, 4) their targets.
        weights: (wx, wy, ww, wh) scaling each delta (Fast R-CNN's stage two: 10, 10, 5, 5).

    Returns:
        float32 tensor (R, 4) of (dx, dy, dw, dh).
    """
    ref, gt = _t(ref), _t(gt)
    rw, rh = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    rx, ry = ref[:, 0] + 0.5 * rw, ref[:, 1] + 0.5 * rh
    gw, gh = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gx, gy = gt[:, 0] + 0.5 * gw, gt[:, 1] + 0.5 * gh
    wx, wy, ww, wh = weights
    return paddle.stack([wx * (gx - rx) / rw, wy * (gy - ry) / rh,
                         ww * paddle.log(gw / rw), wh * paddle.log(gh / rh)], 1)


def decode_boxes(ref, deltas, weights=(1.0, 1.0, 1.0, 1.0)):
    """Inverse of ``encode_boxes``: apply deltas to reference boxes. A decoded width or
    height is at most 1000/16 times its reference's (Detectron's clamp).

    Args:
        ref: (R, 4) reference boxes.
        deltas: (R, 4) (dx, dy, dw, dh).
        weights: as ``encode_boxes``.

    Returns:
        float32 tensor (R, 4) of boxes.
    """
    ref, deltas = _t(ref), _t(deltas)
    rw, rh = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
    rx, ry = ref[:, 0] + 0.5 * rw, ref[:, 1] + 0.5 * rh
    wx, wy, ww, wh = weights
    dx, dy = deltas[:, 0] / wx, deltas[:, 1] / wy
    dw = (deltas[:, 2] / ww).clip(max=_DELTA_CLAMP)
    dh = (deltas[:, 3] / wh).clip(max=_DELTA_CLAMP)
    x, y = rx + dx * rw, ry + dy * rh
    w, h = rw * paddle.exp(dw), rh * paddle.exp(dh)
    return paddle.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 1)


# ------------------------------------------------------- matching, sampling
def match_boxes(iou, fg_thresh, bg_thresh, allow_low_quality=False):
    """Assign each of R candidates to its best ground truth.

    Args:
        iou: (R, G) tensor, candidates x ground-truth boxes.
        fg_thresh: IoU at or above which a candidate is foreground.
        bg_thresh: IoU below which it is background (in between: ignored).
        allow_low_quality: the RPN's rule: also make foreground, for each ground truth,
            the candidates with its highest IoU, so no object is left without one.

    Returns:
        ``(matched, labels)``, two int64 tensors (R,): the index of the best ground-truth
        box, and 1 = foreground, 0 = background, -1 = ignored (all 0 when G = 0).
    """
    r = iou.shape[0]
    if iou.shape[1] == 0:
        return paddle.zeros([r], "int64"), paddle.zeros([r], "int64")
    best, matched = iou.max(1), iou.argmax(1)
    labels = paddle.full([r], -1, "int64")
    labels = paddle.where(best >= fg_thresh, paddle.ones_like(labels), labels)
    labels = paddle.where(best < bg_thresh, paddle.zeros_like(labels), labels)
    if allow_low_quality:
        gt_best = iou.max(0, keepdim=True)
        is_best = ((iou == gt_best) & (gt_best > 0)).any(1)
        labels = paddle.where(is_best, paddle.ones_like(labels), labels)
    return matched, labels


def sample_labels(labels, num, pos_fraction):
    """A random, balanced subset of candidates (uses Paddle's seed).

    Args:
        labels: (R,) int tensor of 1 (foreground), 0 (background), -1 (ignored, never taken).
        num: subset size.
        pos_fraction: at most ``num * pos_fraction`` foreground.

    Returns:
        ``(pos, neg)``: int64 tensors of the indices taken; the background fills the rest.
    """
    pos = paddle.nonzero(labels == 1).flatten()
    neg = paddle.nonzero(labels == 0).flatten()
    n_pos = min(int(pos.shape[0]), int(num * pos_fraction))
    n_neg = min(int(neg.shape[0]), num - n_pos)
    pos = pos[paddle.randperm(pos.shape[0])[:n_pos]] if n_pos else pos[:0]
    neg = neg[paddle.randperm(neg.shape[0])[:n_neg]] if n_neg else neg[:0]
    return pos, neg


def smooth_l1(x, target, beta):
    """Smooth L1 (Huber) loss, summed: quadratic below ``beta``, linear above (Fast R-CNN).

    Args:
        x: predictions.
        target: targets of the same shape.
        beta: the switch point (< 1e-5: plain L1).

    Returns:
        scalar tensor.
    """
    d = (x - target).abs()
    if beta < 1e-5:
        return d.sum()
    return paddle.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta).sum()


# -------------------------------------------------------------------- NMS
def batched_nms(boxes, scores, idxs, iou_threshold, top_k=None):
    """NMS run separately for each value of ``idxs`` (a class, a level); wraps
    ``paddle.vision.ops.nms`` (empty input allowed).

    Args:
        boxes: (n, 4) tensor.
        scores: (n,).
        idxs: (n,) int group of each box.
        iou_threshold: the overlap that suppresses.
        top_k: keep at most this many (None: all).

    Returns:
        int64 tensor of kept indices, highest score first.
    """
    if boxes.shape[0] == 0:
        return paddle.zeros([0], "int64")
    cats = paddle.unique(idxs).numpy().tolist()
    keep = _paddle_nms(boxes, iou_threshold, scores=scores, category_idxs=idxs, categories=cats)
    # Paddle returns the survivors of each category together; order them by score.
    keep = keep[paddle.argsort(scores[keep], descending=True)]
    return keep[:top_k] if top_k else keep


def nms_numpy(boxes, scores, iou_threshold):
    """Greedy NMS written out: take the best box, drop the boxes that overlap it by more
    than ``iou_threshold``, repeat. The loop runs once per *kept* box.

    Args:
        boxes: (n, 4) array.
        scores: (n,) array.
        iou_threshold: the overlap that suppresses.

    Returns:
        int64 array of the kept indices, highest score first (ties: the lower index).
    """
    boxes, order = np.asarray(boxes, np.float32), np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i, order = order[0], order[1:]
        keep.append(int(i))
        if order.size:
            iou = box_iou(boxes[i:i + 1], boxes[order]).numpy()[0]
            order = order[iou <= iou_threshold]
    return np.array(keep, np.int64)


# ------------------------------------------------------ RoIAlign, masks
def roi_align_numpy(feat, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True):
    """RoIAlign by hand: (C, H, W) features, (R, 4) boxes -> (R, C, ph, pw).

    Each RoI is cut into ph x pw bins; in every bin a grid of points (``sampling_ratio``
    per side, or ceil(bin size) when <= 0) is read by bilinear interpolation (双线性插值)
    and averaged. No rounding of the box to the feature grid (RoIPool's flaw).
    ``aligned`` shifts by half a pixel so that a box's edge sits on a pixel's edge.
    Same conventions as ``paddle.vision.ops.roi_align``.

    Args:
        feat: (C, H, W) feature map.
        boxes: (R, 4) in image pixels.
        output_size: ph = pw, or (ph, pw).
        spatial_scale: feature pixels per image pixel (1 / stride).
        sampling_ratio: sample points per bin side; <= 0 = ceil(bin size).
        aligned: the half-pixel shift (True in Mask R-CNN).

    Returns:
        float32 array (R, C, ph, pw).
    """
    feat = np.asarray(feat, np.float64)
    c, h, w = feat.shape
    ph, pw = (output_size, output_size) if np.isscalar(output_size) else output_size
    off = 0.5 if aligned else 0.0
    out = np.zeros((len(boxes), c, ph, pw))
    for r, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, np.float64)):
        sx, sy = x0 * spatial_scale - off, y0 * spatial_scale - off
        rw, rh = x1 * spatial_scale - off - sx, y1 * spatial_scale - off - sy
        if not aligned:                       # the legacy version forces RoIs >= 1 pixel
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bw, bh = rw / pw, rh / ph
        gy = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rh / ph))
        gx = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rw / pw))
        # sample coordinates: bin index * bin size + (sub-point + 0.5) * sub-step
        ys = sy + (np.arange(ph)[:, None] * bh + (np.arange(gy)[None] + 0.5) * bh / gy).ravel()
        xs = sx + (np.arange(pw)[:, None] * bw + (np.arange(gx)[None] + 0.5) * bw / gx).ravel()
        vals = _bilinear_grid(feat, ys, xs)                  # (C, ph*gy, pw*gx)
        out[r] = vals.reshape(c, ph, gy, pw, gx).mean((2, 4)) if gy * gx else 0
    return out.astype(np.float32)


def _bilinear_grid(feat, ys, xs):
    """feat (C, H, W) read at every (y, x) of the grid ys x xs. Points more than one
    pixel outside give 0; points just outside are clamped to the border (Detectron)."""
    _, h, w = feat.shape

    def axis(v, n):
        valid = (v >= -1.0) & (v <= n)
        v = np.clip(v, 0, None)
        lo = np.floor(v).astype(np.int64)
        at_end = lo >= n - 1
        lo = np.where(at_end, n - 1, lo)
        hi = np.where(at_end, n - 1, lo + 1)
        v = np.where(at_end, lo, v)
        frac = v - lo
        return lo, hi, frac, valid

    y0, y1, fy, vy = axis(ys, h)
    x0, x1, fx, vx = axis(xs, w)
    top = feat[:, y0][:, :, x0] * (1 - fx) + feat[:, y0][:, :, x1] * fx
    bot = feat[:, y1][:, :, x0] * (1 - fx) + feat[:, y1][:, :, x1] * fx
    val = top * (1 - fy)[:, None] + bot * fy[:, None]
    return val * (vy[:, None] & vx[None, :])


def crop_and_resize(masks, boxes, size):
    """Each mask cut to its box and resized by RoIAlign: Mask R-CNN's mask targets (each
    RoI reads its own 'image').

    Args:
        masks: (R, H, W) masks, float or bool (read as 0/1).
        boxes: (R, 4), box r for mask r.
        size: side of the output.

    Returns:
        float32 tensor (R, size, size) in [0, 1].
    """
    # bool masks (a DataLoader's tensors) are read as 0/1: RoIAlign interpolates floats
    masks, boxes = _t(masks).astype("float32"), _t(boxes)
    r = masks.shape[0]
    if r == 0:
        return paddle.zeros([0, size, size])
    ones = paddle.ones([r], "int32")
    return roi_align(masks[:, None], boxes, ones, size, 1.0, 2, True)[:, 0]


def paste_masks(masks, boxes, size, fill=0.0):
    """Paste RoI masks (or mask logits) back into the image: each pixel centre inside box r
    reads mask r bilinearly; outside the box it gets ``fill``. Differentiable
    (grid_sample), so UPSNet's panoptic loss reaches the mask head.

    Args:
        masks: (R, m, m) masks or logits.
        boxes: (R, 4).
        size: (H, W) of the image.
        fill: the value outside each box.

    Returns:
        float32 tensor (R, H, W).
    """
    masks, boxes = _t(masks), _t(boxes)
    h, w = size
    r = masks.shape[0]
    if r == 0:
        return paddle.zeros([0, h, w])
    xs = paddle.arange(w, dtype="float32") + 0.5
    ys = paddle.arange(h, dtype="float32") + 0.5
    bw = (boxes[:, 2] - boxes[:, 0]).clip(min=1e-3)[:, None]
    bh = (boxes[:, 3] - boxes[:, 1]).clip(min=1e-3)[:, None]
    gx = 2 * (xs[None] - boxes[:, :1]) / bw - 1                     # (R, W), -1..1 inside
    gy = 2 * (ys[None] - boxes[:, 1:2]) / bh - 1                    # (R, H)
    grid = paddle.stack([gx[:, None, :].expand([r, h, w]), gy[:, :, None].expand([r, h, w])], -1)
    out = F.grid_sample(masks[:, None], grid, mode="bilinear", padding_mode="border",
                        align_corners=False)[:, 0]
    inside = ((gx.abs() <= 1)[:, None, :] & (gy.abs() <= 1)[:, :, None]).astype(out.dtype)
    return out * inside + fill * (1 - inside)


def boxes_inside(boxes, size):
    """Which pixels each box covers (UPSNet's box crop).

    Args:
        boxes: (R, 4).
        size: (H, W) of the image.

    Returns:
        float32 tensor (R, H, W): 1 where the pixel centre lies in box r, else 0.
    """
    boxes = _t(boxes)
    h, w = size
    xs = paddle.arange(w, dtype="float32") + 0.5
    ys = paddle.arange(h, dtype="float32") + 0.5
    inx = (xs[None] >= boxes[:, :1]) & (xs[None] < boxes[:, 2:3])
    iny = (ys[None] >= boxes[:, 1:2]) & (ys[None] < boxes[:, 3:4])
    return (iny[:, :, None] & inx[:, None, :]).astype("float32")
