"""UPSNet (Xiong et al., CVPR 2019): top-down panoptic segmentation (全景分割).

One backbone + FPN feeds two heads: a semantic head (deformable convs on every pyramid
level, upsampled and concatenated, one logit map per class) and the Mask R-CNN instance
head. A parameter-free panoptic head turns their logits into one pixel classification
whose channels are: the stuff classes, one channel per detected instance, and an
*unknown* channel:

- stuff channel s:     the semantic logits of stuff class s;
- instance channel i:  the semantic logits of instance i's class, cropped to its box,
                       plus its mask logits pasted into the box (zero outside the box);
- unknown:             max over thing classes of the semantic logits minus max over
                       instances of the mask logits: large where the semantic head sees
                       a thing but no instance explains it (a missed or wrong detection).

The argmax gives ``class * LABEL_DIVISOR + id``, and ``255 * LABEL_DIVISOR`` (void, category 255 = ignore)
where unknown wins. In training the
instance channels are built from the ground-truth boxes, a random fraction of instances
is hidden and labelled unknown, and a cross-entropy on the panoptic logits back-propagates
into both heads. ``model(images, targets)`` returns the loss dict; eval ``model(images)``
returns per image the Mask R-CNN outputs plus ``semantic`` and ``panoptic`` maps.

``num_classes`` counts all classes (the semantic head's channels); ``thing_ids`` and
``stuff_ids`` name the thing and stuff classes (as for Mask R-CNN and SOLO). The panoptic
head's training target (which instances are hidden, the channel of each pixel) is built in
the data pipeline by ``model.target_transform()``
(``common.data.instances.PanopticHeadTargets``); targets without it get it on the fly.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.vision.ops import DeformConv2D

from ..data.instances import PanopticHeadTargets, panoptic_head_target
from ..labels import LABEL_DIVISOR, PANOPTIC_VOID
from ..ops import boxes as box_ops
from .layers import ConvGNReLU, gn_groups, resize_to
from .mask_rcnn import MaskRCNN
from .registry import register


def _numpy(x):
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


def _tensor(x):
    return x if isinstance(x, paddle.Tensor) else paddle.to_tensor(x)


class DeformConvReLU(nn.Layer):
    """3x3 deformable convolution (可变形卷积): a plain conv predicts a 2-D offset for each
    of the 9 taps (zero at init, so it starts as a normal conv), GroupNorm, ReLU."""

    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.offset = nn.Conv2D(in_ch, 18, 3, padding=1, weight_attr=nn.initializer.Constant(0.0),
                                bias_attr=nn.initializer.Constant(0.0))
        self.conv = DeformConv2D(in_ch, out_ch, 3, padding=1, bias_attr=False)
        self.norm = nn.GroupNorm(gn_groups(out_ch), out_ch)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x, self.offset(x))))


class SemanticHead(nn.Layer):
    """The same small subnet on every pyramid level, all upsampled to the finest level,
    concatenated, then a 1x1 conv to class logits at the input size."""

    def __init__(self, in_channels, channels, num_levels, num_classes, deformable=True):
        super().__init__()

        def block(cin, cout):
            if deformable:
                return DeformConvReLU(cin, cout)
            return ConvGNReLU(cin, cout)

        self.subnet = nn.Sequential(block(in_channels, channels), block(channels, channels))
        self.classifier = nn.Conv2D(channels * num_levels, num_classes, 1)

    def forward(self, feats, image_size):
        size = feats[0].shape[-2:]
        x = paddle.concat([resize_to(self.subnet(f), size) for f in feats], 1)
        return resize_to(self.classifier(x), image_size)


def panoptic_logits(sem_logits, boxes, classes, mask_logits, stuff_ids, thing_ids):
    """UPSNet's parameter-free panoptic head for one image.

    Args:
        sem_logits: (K, H, W) semantic logits.
        boxes: (n, 4) instance boxes.
        classes: (n,) dataset class ids of the instances.
        mask_logits: (n, H, W) mask logits already pasted (zero outside each box).
        stuff_ids: stuff class ids, in channel order.
        thing_ids: thing class ids (the unknown channel takes their max).

    Returns:
        tensor (len(stuff_ids) + n + 1, H, W): stuff, instances, unknown.
    """
    h, w = sem_logits.shape[-2:]
    stuff = paddle.gather(sem_logits, paddle.to_tensor(list(stuff_ids), "int64"))
    thing_max = paddle.gather(sem_logits, paddle.to_tensor(list(thing_ids), "int64")).max(0)
    n = boxes.shape[0]
    if n == 0:
        return paddle.concat([stuff, thing_max[None]])
    inside = box_ops.boxes_inside(boxes, (h, w))
    inst = paddle.gather(sem_logits, classes) * inside + mask_logits
    unknown = thing_max - mask_logits.max(0)
    return paddle.concat([stuff, inst, unknown[None]])


def panoptic_from_logits(logits, classes, stuff_ids, void=PANOPTIC_VOID,
                         label_divisor=LABEL_DIVISOR):
    """Argmax of the panoptic logits as a panoptic map.

    Args:
        logits: (len(stuff_ids) + n + 1, H, W) from ``panoptic_logits``.
        classes: (n,) dataset class ids of the instances.
        stuff_ids: stuff class ids, in channel order.
        void: the value where the unknown channel wins.
        label_divisor: ``class * label_divisor + instance``.

    Returns:
        (H, W) int64: stuff ``s * divisor``, instance i ``class_i * divisor + i + 1``, ``void``.
    """
    n = len(classes)
    ch = logits.argmax(0).numpy()
    table = np.concatenate([np.asarray(stuff_ids, np.int64) * label_divisor,
                            np.asarray(classes, np.int64) * label_divisor + np.arange(1, n + 1),
                            [void]]).astype(np.int64)
    return table[ch]


class UPSNet(MaskRCNN):
    """UPSNet: Mask R-CNN + a semantic head + the parameter-free panoptic head.

    Args:
        num_classes: all classes (the semantic head's outputs).
        thing_ids: dataset class ids of the thing classes (required).
        stuff_ids: dataset class ids of the stuff classes (required).
        sem_channels: channels of the semantic head.
        deformable: deformable convs in the semantic head (the paper) or plain ones.
        sem_weight: weight of the semantic loss.
        pan_weight: weight of the panoptic loss.
        unknown_fraction: chance of hiding a ground-truth instance in the panoptic loss.
        ignore_index: void label of the semantic maps.
        **kwargs: ``MaskRCNN``'s arguments.
    """

    def __init__(self, num_classes, thing_ids=None, stuff_ids=None, sem_channels=128,
                 deformable=True, sem_weight=1.0, pan_weight=0.5, unknown_fraction=0.2,
                 ignore_index=255, **kwargs):
        if thing_ids is None or stuff_ids is None:
            raise ValueError("UPSNet needs thing_ids and stuff_ids (e.g. variant.thing_ids)")
        super().__init__(num_classes, thing_ids=thing_ids, **kwargs)
        self.stuff_ids = tuple(stuff_ids)
        self.semantic_head = SemanticHead(self.fpn.lateral[0].weight.shape[0], sem_channels,
                                          len(self.levels), num_classes, deformable)
        self.sem_weight, self.pan_weight = sem_weight, pan_weight
        self.unknown_fraction, self.ignore_index = unknown_fraction, ignore_index
        self.void = ignore_index * LABEL_DIVISOR       # category 255: neither stuff nor thing

    def target_transform(self):
        """The panoptic head's training targets, for the dataset's ``target_transform``."""
        return PanopticHeadTargets(self.stuff_ids, self.unknown_fraction, self.ignore_index)

    def panoptic_target(self, semantic, masks, shown):
        """Per-pixel channel of the panoptic logits (``panoptic_head_target``) as a tensor."""
        return paddle.to_tensor(panoptic_head_target(semantic, masks, shown, self.stuff_ids,
                                                     self.ignore_index))

    def _head_targets(self, targets):
        """(shown, channel target) per image: from the data pipeline when it built them,
        else drawn here (Paddle's seed) and built on the host."""
        out = []
        for t in targets:
            if "panoptic_target" in t and "shown" in t:
                out.append((_numpy(t["shown"]).astype(bool), _tensor(t["panoptic_target"])))
                continue
            n = t["boxes"].shape[0]
            shown = paddle.rand([max(n, 1)]).numpy()[:n] >= self.unknown_fraction
            out.append((shown, self.panoptic_target(_numpy(t["semantic"]), _numpy(t["masks"]) > 0, shown)))
        return out

    def panoptic_loss(self, feats, sem_logits, targets):
        """Cross-entropy of the panoptic head built on ground-truth boxes and classes."""
        size = tuple(sem_logits.shape[-2:])
        head = self._head_targets(targets)
        shown_all = [shown for shown, _ in head]
        boxes = [t["boxes"][paddle.to_tensor(np.flatnonzero(s))] if s.any() else paddle.zeros([0, 4])
                 for t, s in zip(targets, shown_all)]
        labels = [t["labels"][paddle.to_tensor(np.flatnonzero(s))] if s.any() else
                  paddle.zeros([0], "int64") for t, s in zip(targets, shown_all)]
        logits = self.mask_logits(feats, boxes, self.to_internal(paddle.concat(labels)))
        loss, start = 0.0, 0
        for i in range(len(targets)):
            n = boxes[i].shape[0]
            pasted = box_ops.paste_masks(logits[start:start + n], boxes[i], size)
            start += n
            z = panoptic_logits(sem_logits[i], boxes[i], labels[i], pasted,
                                self.stuff_ids, self.thing_ids)
            target = head[i][1]
            loss = loss + F.cross_entropy(z.transpose([1, 2, 0]), target[..., None],
                                          ignore_index=self.ignore_index)
        return loss / len(targets)

    def forward(self, images, targets=None):
        if self.training and targets is None:
            raise ValueError("UPSNet in train mode needs targets (boxes, labels, masks, "
                             "semantic); call model.eval() to predict")
        size = tuple(images.shape[-2:])
        feats = self.features(images)
        sem = self.semantic_head(feats[:len(self.levels)], size)
        if self.training:
            losses = self.instance_forward(feats, size, targets)
            semantic = paddle.stack([t["semantic"] for t in targets])
            losses["loss_sem"] = self.sem_weight * F.cross_entropy(
                sem.transpose([0, 2, 3, 1]), semantic[..., None], ignore_index=self.ignore_index)
            losses["loss_pan"] = self.pan_weight * self.panoptic_loss(
                feats[:len(self.levels)], sem, targets)
            return losses
        results = []
        for i, r in enumerate(self.instance_forward(feats, size)):
            out = self.to_numpy(r, size)
            pasted = box_ops.paste_masks(r["mask_logits"], r["boxes"], size)
            labels = paddle.to_tensor(out["labels"])
            z = panoptic_logits(sem[i], r["boxes"], labels, pasted, self.stuff_ids, self.thing_ids)
            out["semantic"] = sem[i].argmax(0).numpy()
            out["panoptic"] = panoptic_from_logits(z, out["labels"], self.stuff_ids, self.void)
            results.append(out)
        return results


@register("upsnet")
def upsnet(num_classes, **kwargs):
    return UPSNet(num_classes, **kwargs)
