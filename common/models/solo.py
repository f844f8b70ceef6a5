"""SOLO: Segmenting Objects by Locations (Wang et al., ECCV 2020), decoupled variant.

Bottom-up instance segmentation (自底向上 / proposal-free): no boxes, no RoIs. The image
is cut into an S x S grid; the cell that holds an object's centre must (a) say the
object's class (category branch, S x S x C) and (b) paint its mask (mask branch).
Decoupled SOLO predicts the mask of cell (i, j) as the product of two maps,
``sigmoid(Y_i) * sigmoid(X_j)``: 2S output channels instead of S^2.
Objects of different sizes go to different FPN levels (scale assignment), each level
with its own grid size. Training: focal loss on the grid of categories, Dice loss on
the masks of the positive cells. Inference: score, mask, then Matrix NMS.

``model(images, targets)`` -> dict of losses (``loss_cate``, ``loss_mask`` and their total
``loss``); ``model(images)`` in train mode -> raw outputs (for ``loss(outputs, targets)``);
in eval mode -> a list (one per image) of dicts ``masks`` (n, H, W) bool, ``labels``
(n,), ``scores`` (n,).

As for Mask R-CNN and UPSNet, ``num_classes`` counts all the dataset's classes and
``thing_ids`` names the thing classes (default: all); the category branch has one output
per thing class, and labels in and out are dataset class ids. The grid targets are built
in the data pipeline by ``model.target_transform()`` (``common.data.instances.GridTargets``,
so DataLoader workers build them); targets without them are assigned on the fly.
"""
from __future__ import annotations

import math

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..data.instances import GridTargets
from .backbones.resnet import ResNet
from .layers import FPN, ConvGNReLU, resize_to
from .registry import register


def _tower(in_ch, ch, n):
    # GroupNorm as in the paper: independent of the (tiny) batch size.
    return nn.Sequential(*[ConvGNReLU(in_ch if k == 0 else ch, ch) for k in range(n)])


def _tensor(x):
    return x if isinstance(x, paddle.Tensor) else paddle.to_tensor(np.asarray(x))


def _coords(x, axis):
    """A (N, 1, h, w) map of normalised x (axis=1) or y (axis=0) coordinates in [-1, 1]: CoordConv,
    so a translation-invariant conv can still paint a mask at a *position*."""
    n, _, h, w = x.shape
    line = paddle.linspace(-1, 1, w if axis == 1 else h)
    grid = line.reshape([1, 1, 1, w]).expand([n, 1, h, w]) if axis == 1 else \
        line.reshape([1, 1, h, 1]).expand([n, 1, h, w])
    return grid.astype(x.dtype)


def matrix_nms(masks, labels, scores, kernel="gaussian", sigma=2.0):
    """Matrix NMS (SOLOv2): decay each score by its overlap with higher-scored masks of the
    same class, in parallel, instead of deleting masks one by one.

    For mask j, decay_j = min over higher-scored i of f(iou_ij) / f(comp_i), where comp_i
    is i's own largest IoU with a mask above it (a mask that was itself suppressed should
    suppress less). f(x) = exp(-sigma x^2) (gaussian) or 1 - x (linear).

    Args:
        masks: (n, H, W) bool masks.
        labels: (n,) their classes.
        scores: (n,) their scores.
        kernel: 'gaussian' or 'linear'.
        sigma: the Gaussian's sigma.

    Returns:
        float64 array (n,) of the decayed scores, in the input order.
    """
    masks = np.asarray(masks, bool)
    n = len(masks)
    if n == 0:
        return np.zeros(0, np.float64)
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    m = masks[order].reshape(n, -1).astype(np.float64)
    lab = np.asarray(labels)[order]
    inter = m @ m.T
    area = m.sum(1)
    iou = inter / np.maximum(area[:, None] + area[None, :] - inter, 1e-9)
    # only pairs (i above j) of the same class count
    iou = np.triu(iou, k=1) * (lab[:, None] == lab[None, :])
    comp = iou.max(0)                       # comp_i: max IoU of i with any mask above it
    if kernel == "gaussian":
        decay = np.exp(-sigma * (iou ** 2 - comp[:, None] ** 2)).min(0)
    elif kernel == "linear":
        decay = ((1 - iou) / (1 - comp[:, None])).min(0)
    else:
        raise ValueError(f"kernel must be 'gaussian' or 'linear', got {kernel!r}")
    out = np.empty(n)
    out[order] = np.asarray(scores, np.float64)[order] * decay
    return out


def dice_loss_masks(pred, target, eps=1e-3):
    """1 - Dice per mask, SOLO's form: 1 - 2 sum(pg) / (sum p^2 + sum g^2 + eps).

    Args:
        pred: (n, h, w) soft masks in [0, 1].
        target: (n, h, w) targets in [0, 1].
        eps: added to the denominator (an empty pair gives loss 1, not NaN).

    Returns:
        tensor (n,).
    """
    inter = (pred * target).sum(axis=[1, 2])
    denom = (pred * pred).sum(axis=[1, 2]) + (target * target).sum(axis=[1, 2])
    return 1 - 2 * inter / (denom + eps)


class SOLO(nn.Layer):
    """Decoupled SOLO on a ResNet + FPN.

    ``levels`` pick FPN outputs (0 = P2 at stride 4 ... 4 = P6 at stride 64), each with a
    grid size in ``num_grids`` and a range of object scales sqrt(area) in pixels in
    ``scale_ranges`` (ranges overlap, so an object near a border trains two levels).
    Defaults are the paper's (P2..P6, grids 40 36 24 16 12). ``sigma`` sets the centre
    region: the cells within sigma/2 of the box size around the centre of mass are positive.

    Args:
        num_classes: all classes of the dataset (stuff included).
        thing_ids: dataset class ids of the thing classes (default: all ``range(num_classes)``);
            the category branch predicts these, and labels are these ids.
        depth: ResNet depth.
        width: ResNet stem channels.
        fpn_channels: channels of every FPN level.
        head_channels: channels of the category and mask towers.
        stacked_convs: Conv-GN-ReLU blocks per tower.
        levels: FPN outputs used (0 = P2 ... 4 = P6).
        num_grids: grid size S of each level.
        scale_ranges: (low, high) of sqrt(object area) in pixels for each level.
        sigma: centre-region size as a fraction of the box.
        mask_weight: weight of the Dice loss.
        score_thresh: inference: minimum cell score.
        mask_thresh: inference: probability at which a mask is binarised.
        update_thresh: inference: minimum score after Matrix NMS.
        nms_pre: inference: masks kept before Matrix NMS.
        max_per_img: inference: masks kept per image.
        pretrained: backbone weights (see ``ResNet``).
    """

    task = "instance"          # how common.engine.Trainer trains and scores it

    def __init__(self, num_classes, thing_ids=None, depth=50, width=64, fpn_channels=256, head_channels=256,
                 stacked_convs=7, levels=(0, 1, 2, 3, 4), num_grids=(40, 36, 24, 16, 12),
                 scale_ranges=((1, 96), (48, 192), (96, 384), (192, 768), (384, 2048)),
                 sigma=0.2, mask_weight=3.0, score_thresh=0.1, mask_thresh=0.5,
                 update_thresh=0.05, nms_pre=500, max_per_img=100, pretrained=None):
        super().__init__()
        if not len(levels) == len(num_grids) == len(scale_ranges):
            raise ValueError("levels, num_grids and scale_ranges must have the same length")
        self.num_classes, self.levels, self.num_grids = num_classes, tuple(levels), tuple(num_grids)
        self.thing_ids = tuple(range(num_classes) if thing_ids is None else thing_ids)
        if not self.thing_ids or min(self.thing_ids) < 0 or max(self.thing_ids) >= num_classes:
            raise ValueError(f"thing_ids {self.thing_ids} must be class ids in 0..{num_classes - 1}")
        self.scale_ranges, self.sigma, self.mask_weight = tuple(scale_ranges), sigma, mask_weight
        self.score_thresh, self.mask_thresh, self.update_thresh = score_thresh, mask_thresh, update_thresh
        self.nms_pre, self.max_per_img = nms_pre, max_per_img
        self.backbone = ResNet(depth, width, output_stride=32, pretrained=pretrained)
        self.fpn = FPN(self.backbone.channels, fpn_channels, p6=True)
        self.cate_tower = _tower(fpn_channels, head_channels, stacked_convs)
        prior = -math.log((1 - 0.01) / 0.01)   # start every cell at p=0.01: focal loss's prior
        self.cate_out = nn.Conv2D(head_channels, len(self.thing_ids), 3, padding=1,
                                  bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(prior)))
        # One mask tower (shared by the levels, with x and y coordinates as extra inputs)
        # feeds two 1x1 outputs per level: S maps for the columns (X), S for the rows (Y).
        # The logits are then upsampled 2x (cheaper on a CPU than convolving at 2x).
        self.mask_tower = _tower(fpn_channels + 2, head_channels, stacked_convs)
        self.mask_out_x = nn.LayerList([nn.Conv2D(head_channels, s, 1) for s in num_grids])
        self.mask_out_y = nn.LayerList([nn.Conv2D(head_channels, s, 1) for s in num_grids])

    # ------------------------------------------------------------------ forward
    def heads(self, images):
        """Raw outputs: per level ``cate`` (N, C, S, S) logits, ``mask_x`` / ``mask_y``
        (N, S, h, w) logits at twice the level's resolution."""
        feats = self.fpn(self.backbone(images))
        out = dict(cate=[], mask_x=[], mask_y=[])
        for k, (lvl, s) in enumerate(zip(self.levels, self.num_grids)):
            f = feats[lvl]
            out["cate"].append(self.cate_out(self.cate_tower(resize_to(f, (s, s)))))
            up = (2 * f.shape[2], 2 * f.shape[3])
            t = self.mask_tower(paddle.concat([f, _coords(f, 1), _coords(f, 0)], 1))
            out["mask_x"].append(resize_to(self.mask_out_x[k](t), up))
            out["mask_y"].append(resize_to(self.mask_out_y[k](t), up))
        return out

    def forward(self, images, targets=None):
        out = self.heads(images)
        if targets is not None:
            return self.loss(out, targets, tuple(images.shape[-2:]))
        if self.training:
            return out
        return self.postprocess(out, tuple(images.shape[-2:]))

    # ------------------------------------------------------------------ targets
    def target_transform(self):
        """The grid targets of this model's levels, for the dataset's ``target_transform``
        (``common.data.instances.GridTargets``)."""
        return GridTargets(self.thing_ids, self.scale_ranges, self.num_grids, self.sigma,
                           self.levels)

    def loss(self, out, targets, image_shape):
        """Focal loss on the category grids (normalised by the positives) + ``mask_weight`` x
        mean Dice loss over the positive cells.

        ``targets``: one dict per image with the ``GridTargets`` keys (``grid_cate``,
        ``grid_cells``, ``grid_masks``), or with ``masks`` and ``labels`` only (then assigned
        here, on the host)."""
        if any("grid_cate" not in t for t in targets):
            build = self.target_transform()
            targets = [t if "grid_cate" in t else build(t) for t in targets]
        k_things = len(self.thing_ids)
        cate_logits, cate_labels, dice = [], [], []
        for k, s in enumerate(self.num_grids):
            cate_logits.append(out["cate"][k].transpose([0, 2, 3, 1]).reshape([-1, k_things]))
            grid = paddle.concat([_tensor(t["grid_cate"][k]).reshape([-1]) for t in targets])
            cate_labels.append(F.one_hot(grid + 1, k_things + 1)[:, 1:])   # -1 -> all zeros
            hm, wm = out["mask_x"][k].shape[-2:]
            rows, cols, tgt = [], [], []
            for b, t in enumerate(targets):
                masks = _tensor(t["grid_masks"][k])
                if tuple(masks.shape[-2:]) != (hm, wm):
                    raise ValueError(f"grid_masks of level {k} are {tuple(masks.shape[-2:])}, the "
                                     f"model's masks {(hm, wm)}: targets built for another image size?")
                if masks.shape[0]:
                    cells = _tensor(t["grid_cells"][k])
                    rows.append(cells[:, 0] + b * s)
                    cols.append(cells[:, 1] + b * s)
                    tgt.append(masks)
            if tgt:
                my = paddle.gather(out["mask_y"][k].reshape([-1, hm, wm]), paddle.concat(rows))
                mx = paddle.gather(out["mask_x"][k].reshape([-1, hm, wm]), paddle.concat(cols))
                # levels differ in mask resolution: one Dice value per positive, then the mean
                dice.append(dice_loss_masks(F.sigmoid(my) * F.sigmoid(mx), paddle.concat(tgt)))
        labels = paddle.concat(cate_labels)
        loss_cate = F.sigmoid_focal_loss(paddle.concat(cate_logits), labels,
                                         normalizer=labels.sum().reshape([1]) + 1.0)
        if dice:
            loss_mask = paddle.concat(dice).mean()
        else:
            loss_mask = (out["mask_x"][0] * 0).sum()
        loss_mask = self.mask_weight * loss_mask
        return dict(loss_cate=loss_cate, loss_mask=loss_mask, loss=loss_cate + loss_mask)

    # --------------------------------------------------------------- inference
    @paddle.no_grad()
    def postprocess(self, out, image_shape):
        """Per image: cells whose class score survives point NMS (a 2x2 local maximum) and
        ``score_thresh``; their masks, binarised at ``mask_thresh``; score x maskness
        (mean soft value inside the mask); Matrix NMS; keep decayed scores > ``update_thresh``."""
        results = []
        n = out["cate"][0].shape[0]
        for b in range(n):
            soft, labels, scores = [], [], []
            for k in range(len(self.num_grids)):
                heat = F.sigmoid(out["cate"][k][b:b + 1])
                hmax = F.max_pool2d(heat, 2, stride=1, padding=1)[:, :, :-1, :-1]
                heat = (heat * (hmax == heat).astype(heat.dtype))[0].numpy()   # (C, S, S)
                c, i, j = np.nonzero(heat > self.score_thresh)
                if len(c) == 0:
                    continue
                my = F.sigmoid(out["mask_y"][k][b])
                mx = F.sigmoid(out["mask_x"][k][b])
                m = paddle.gather(my, paddle.to_tensor(i)) * paddle.gather(mx, paddle.to_tensor(j))
                soft.append(resize_to(m.unsqueeze(0), image_shape)[0].numpy())
                labels.append(c)
                scores.append(heat[c, i, j])
            if not soft:
                h, w = image_shape
                results.append(dict(masks=np.zeros((0, h, w), bool), labels=np.zeros(0, np.int64),
                                    scores=np.zeros(0, np.float32)))
                continue
            soft, labels, scores = np.concatenate(soft), np.concatenate(labels), np.concatenate(scores)
            masks = soft > self.mask_thresh
            area = masks.reshape(len(masks), -1).sum(1)
            keep = area > 0
            maskness = (soft * masks).reshape(len(masks), -1).sum(1) / np.maximum(area, 1)
            masks, labels, scores = masks[keep], labels[keep], (scores * maskness)[keep]
            top = np.argsort(-scores, kind="mergesort")[:self.nms_pre]
            masks, labels, scores = masks[top], labels[top], scores[top]
            scores = matrix_nms(masks, labels, scores)
            top = np.argsort(-scores, kind="mergesort")
            top = top[scores[top] > self.update_thresh][:self.max_per_img]
            results.append(dict(masks=masks[top], labels=np.asarray(self.thing_ids, np.int64)[labels[top]],
                                scores=scores[top].astype(np.float32)))
        return results


@register("solo")
def solo(num_classes, **kwargs):
    """Decoupled SOLO; ``num_classes`` counts all classes, ``thing_ids`` names the things."""
    return SOLO(num_classes, **kwargs)
