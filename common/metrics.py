"""Segmentation metrics, computed exactly from a confusion matrix.

Conventions (tested in tests/test_metrics.py):

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


def _to_numpy(x):
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.asarray(x)


def confusion_matrix(pred, label, num_classes, ignore_index=255):
    """(K, K) int64 counts: ``conf[gt, pred]``. ``pred`` and ``label`` share one shape."""
    pred, label = _to_numpy(pred), _to_numpy(label)
    if pred.shape != label.shape:
        raise ValueError(f"pred shape {pred.shape} differs from label shape {label.shape}")
    pred = pred.astype(np.int64).ravel()
    label = label.astype(np.int64).ravel()
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
    """
    conf = np.asarray(conf, np.float64)
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
    """Streaming confusion matrix: ``update(pred, label)`` per batch, ``compute()`` at the end."""

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
