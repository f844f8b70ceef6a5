"""Losses for logits (N, K, H, W) and integer labels (N, H, W)."""
from __future__ import annotations

import paddle
import paddle.nn.functional as F


def cross_entropy(logits, label, ignore_index=255, weight=None):
    """Pixel-wise softmax cross-entropy, mean over non-ignored pixels.

    Args:
        logits: float tensor (N, K, H, W).
        label: int tensor (N, H, W) of class indices or ``ignore_index``.
        ignore_index: label value that adds nothing to the loss or to the mean's count.
        weight: optional per-class weights (length K), e.g. to lift rare classes; the mean
            is then weighted, as in ``paddle.nn.functional.cross_entropy``.

    Returns:
        scalar float tensor.
    """
    if weight is not None and not isinstance(weight, paddle.Tensor):
        weight = paddle.to_tensor(weight, dtype=logits.dtype)
    return F.cross_entropy(logits, label.astype("int64"), weight=weight, axis=1,
                           ignore_index=ignore_index)


def dice_loss(logits, label, ignore_index=255, eps=1.0):
    """1 - mean soft Dice over classes, on softmax probabilities; ignored pixels masked out.

    The smoothing ``eps`` keeps the loss defined for a class absent from the batch.
    """
    k = logits.shape[1]
    valid = (label != ignore_index).astype(logits.dtype).unsqueeze(1)
    target = F.one_hot(paddle.where(label == ignore_index, paddle.zeros_like(label), label)
                       .astype("int64"), k).transpose([0, 3, 1, 2]).astype(logits.dtype)
    prob = F.softmax(logits, axis=1) * valid
    target = target * valid
    inter = (prob * target).sum(axis=[0, 2, 3])
    denom = prob.sum(axis=[0, 2, 3]) + target.sum(axis=[0, 2, 3])
    return 1 - ((2 * inter + eps) / (denom + eps)).mean()


class SegLoss:
    """Cross-entropy (+ ``dice`` x Dice) on the main output, plus ``aux_weight`` x the same on
    each auxiliary output of a model that returns a list in train mode.

    ``loss_fn(outputs, label)``: ``outputs`` is the logits (N, K, H, W) or the train-mode
    list ``[main, aux, ...]`` (see ``common.models``), ``label`` int (N, H, W).

    Args:
        ignore_index: label value not trained on.
        weight: optional per-class weights (length K) of the cross-entropy.
        dice: weight of the soft Dice term (0: cross-entropy only).
        aux_weight: weight of each auxiliary output's loss (0.4, PSPNet's).
    """

    def __init__(self, ignore_index=255, weight=None, dice=0.0, aux_weight=0.4):
        self.ignore_index, self.weight, self.dice, self.aux_weight = ignore_index, weight, dice, aux_weight

    def single(self, logits, label):
        loss = cross_entropy(logits, label, self.ignore_index, self.weight)
        if self.dice:
            loss = loss + self.dice * dice_loss(logits, label, self.ignore_index)
        return loss

    def __call__(self, outputs, label):
        if isinstance(outputs, (list, tuple)):
            main, aux = outputs[0], outputs[1:]
            return self.single(main, label) + sum(self.aux_weight * self.single(a, label) for a in aux)
        return self.single(outputs, label)


class ContextLoss:
    """``SegLoss`` on the 4-D outputs, plus ``sc_weight`` x the semantic-context loss on
    2-D class-node logits (N, M): binary cross-entropy against "class c occurs in this
    image" (GINet's SC-loss; the logits come from ``ContextNet(sc_loss=True)``).

    Args:
        sc_weight: weight of the semantic-context term (GINet uses 0.2).
        ignore_index: label value that is neither a class nor counted as present.
        **seg_kwargs: passed to ``SegLoss`` (``weight``, ``dice``, ``aux_weight``).
    """

    def __init__(self, sc_weight=0.2, ignore_index=255, **seg_kwargs):
        self.seg = SegLoss(ignore_index=ignore_index, **seg_kwargs)
        self.sc_weight, self.ignore_index = sc_weight, ignore_index

    def __call__(self, outputs, label):
        if not isinstance(outputs, (list, tuple)):
            return self.seg(outputs, label)
        maps = [o for o in outputs if o.ndim == 4]
        loss = self.seg(maps if len(maps) > 1 else maps[0], label)
        for logits in (o for o in outputs if o.ndim == 2):
            m = logits.shape[1]
            lab = label.astype("int64").reshape([label.shape[0], -1])
            # ignored pixels count as an extra, dropped class, so they mark no class present
            lab = paddle.where(lab == self.ignore_index, paddle.full_like(lab, m), lab)
            present = (F.one_hot(lab, m + 1).sum(1)[:, :m] > 0).astype(logits.dtype)
            loss = loss + self.sc_weight * F.binary_cross_entropy_with_logits(logits, present)
        return loss
