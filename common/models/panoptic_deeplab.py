"""Panoptic-DeepLab (Cheng et al., CVPR 2020): bottom-up panoptic segmentation (全景分割).

A DeepLab backbone with two branches, each an ASPP + a light decoder (strides 16 -> 8 -> 4):

- semantic branch -> semantic head: K class logits per pixel (stuff and things);
- instance branch -> centre head: a heatmap of instance centres (regressed to a Gaussian
  at each centre of mass) and offset head: for every thing pixel the 2-D vector (dy, dx)
  to its instance's centre.

Post-processing (plain functions below): centres = local maxima of the heatmap (keypoint
NMS by max-pooling) above a threshold, the top k; every thing pixel joins the centre
nearest to (pixel + offset); each instance takes the majority class of its pixels; small
stuff areas become void; all merged into ``class * label_divisor + id``.

``model(images)`` returns dict ``semantic`` (N, K, H, W), ``center`` (N, 1, H, W), ``offset``
(N, 2, H, W) at the input size (offsets in input pixels, (dy, dx)); ``model.panoptic(images)``
returns the panoptic maps. Training: ``PanopticDeepLabLoss`` on the targets that
``common.data.panoptic.panoptic_deeplab_targets`` builds in the data pipeline.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..data.panoptic import PanopticDeepLabTargets, panoptic_deeplab_targets
from ..labels import LABEL_DIVISOR
from .backbones.resnet import ResNet
from .layers import ASPP, ConvBNReLU, SeparableConvBNReLU, resize_to
from .registry import register

__all__ = ["PanopticDeepLab", "PanopticDeepLabLoss", "PanopticDeepLabTargets", "panoptic_deeplab_targets",
           "find_instance_centers", "group_pixels", "merge_semantic_and_instance", "panoptic_from_outputs",
           "center_sigma"]


class Decoder(nn.Layer):
    """ASPP on the stride-16 feature, then twice: upsample, concat a 1x1-projected skip
    feature (stride 8, then 4), fuse with a 5x5 separable conv."""

    def __init__(self, in_ch, skip_chs, aspp_ch, skip_proj, dec_ch, rates):
        super().__init__()
        self.aspp = ASPP(in_ch, aspp_ch, rates)
        self.proj = nn.LayerList([ConvBNReLU(c, p, 1) for c, p in zip(skip_chs, skip_proj)])
        ins = [aspp_ch + skip_proj[0], dec_ch + skip_proj[1]]
        self.fuse = nn.LayerList([SeparableConvBNReLU(c, dec_ch, 5) for c in ins])

    def forward(self, c5, skips):
        x = self.aspp(c5)
        for proj, fuse, s in zip(self.proj, self.fuse, skips):
            x = fuse(paddle.concat([resize_to(x, s.shape[-2:]), proj(s)], 1))
        return x


class Head(nn.Sequential):
    """5x5 separable conv + 1x1 prediction."""

    def __init__(self, in_ch, ch, out_ch):
        super().__init__(SeparableConvBNReLU(in_ch, ch, 5), nn.Conv2D(ch, out_ch, 1))


class PanopticDeepLab(nn.Layer):
    """Panoptic-DeepLab. Paper defaults: ResNet-50 at output stride 16, ASPP 256 ch (rates
    6 12 18), semantic decoder 256 ch with skips projected to 64/32, instance decoder 128 ch
    with 32/16, heads 256 / 32 / 32 ch. ``width`` and ``channels`` scale it down for a CPU.

    Args:
        num_classes: all classes, stuff and things.
        thing_ids: the thing classes (their pixels are grouped into instances).
        depth: ResNet depth.
        width: ResNet base width (64 in the paper).
        output_stride: backbone output stride (16 or 8).
        channels: ASPP and semantic decoder channels.
        aspp_rates: ASPP dilation rates.
        pretrained: backbone weights (see ``ResNet``).
        center_threshold: post-processing: minimum heatmap value of a centre.
        nms_kernel: post-processing: keypoint NMS window.
        top_k: post-processing: at most this many centres.
        stuff_area: post-processing: smaller stuff areas become void.
        label_divisor: the panoptic encoding's divisor.
    """

    task = "panoptic"         # common.engine.Trainer: trained by a loss on its outputs, scored by PQ

    def __init__(self, num_classes, thing_ids=(), depth=50, width=64, output_stride=16,
                 channels=256, aspp_rates=(6, 12, 18), pretrained=None,
                 center_threshold=0.1, nms_kernel=7, top_k=200, stuff_area=2048,
                 label_divisor=LABEL_DIVISOR):
        super().__init__()
        self.num_classes, self.thing_ids = num_classes, tuple(thing_ids)
        self.post = dict(threshold=center_threshold, nms_kernel=nms_kernel, top_k=top_k,
                         stuff_area=stuff_area, label_divisor=label_divisor)
        self.backbone = ResNet(depth, width, output_stride=output_stride, pretrained=pretrained)
        c2, c3, _, c5 = self.backbone.channels
        ch = channels
        self.semantic_decoder = Decoder(c5, (c3, c2), ch, (ch // 4, ch // 8), ch, aspp_rates)
        self.instance_decoder = Decoder(c5, (c3, c2), ch, (ch // 8, ch // 16), ch // 2, aspp_rates)
        self.semantic_head = Head(ch, ch, num_classes)
        self.center_head = Head(ch // 2, ch // 8, 1)
        self.offset_head = Head(ch // 2, ch // 8, 2)

    def forward(self, images):
        c2, c3, _, c5 = self.backbone(images)
        size = images.shape[-2:]
        sem = self.semantic_decoder(c5, (c3, c2))
        ins = self.instance_decoder(c5, (c3, c2))
        # Offsets are regressed in input pixels, so resizing them needs no rescaling.
        return dict(semantic=resize_to(self.semantic_head(sem), size),
                    center=resize_to(self.center_head(ins), size),
                    offset=resize_to(self.offset_head(ins), size))

    @paddle.no_grad()
    def panoptic(self, images, semantic=False, **overrides):
        """Panoptic maps (N, H, W) int64 of normalised images (N, 3, H, W); ``overrides``
        change the post-processing settings (threshold, nms_kernel, top_k, stuff_area).
        ``semantic``: also return the semantic head's class map (N, H, W), from the same pass."""
        was_training = self.training
        self.eval()
        x = images if isinstance(images, paddle.Tensor) else paddle.to_tensor(np.asarray(images, np.float32))
        out = self(x)
        self.train(was_training)
        kw = {**self.post, **overrides}
        sem = out["semantic"].argmax(1).numpy()
        pan = np.stack([panoptic_from_outputs(sem[b], out["center"][b, 0], out["offset"][b].numpy(),
                                              self.thing_ids, **kw) for b in range(x.shape[0])])
        return (pan, sem) if semantic else pan


# ------------------------------------------------------------------------- loss
class PanopticDeepLabLoss:
    """Paper's loss: bootstrapped cross-entropy (the hardest ``top_k`` fraction of pixels)
    + ``center_weight`` x MSE on the heatmap + ``offset_weight`` x L1 on thing pixels.

    ``loss_fn(outputs, targets)`` for the course's ``Trainer``; ``parts(...)`` returns the
    three terms.

    ``targets`` are the batched dicts of ``panoptic_deeplab_targets`` that the data
    pipeline prepares (``PanopticScenes(..., targets=loss_fn.targets)``), so training
    builds nothing on the host. Raw panoptic maps (N, H, W) are accepted too (the targets
    are then built here with ``self.targets``: handy for one-off calls, slower in a loop).

    Void pixels (category ``ignore_index``, i.e. ``ignore_index * label_divisor + id``, the
    course's ``PANOPTIC_VOID``; also any negative value, as some datasets write void) count
    in none of the three terms: the hardest-pixel fraction and the heatmap mean are taken
    over the labelled pixels.

    Args:
        thing_ids: the thing classes.
        sigma: Gaussian sigma of the centre targets, in pixels.
        center_weight: weight of the heatmap MSE.
        offset_weight: weight of the offset L1.
        top_k: fraction of the hardest labelled pixels in the cross-entropy.
        label_divisor: the panoptic encoding's divisor.
        ignore_index: the void class.
        small_instance_area: instances below this many pixels weigh ``small_instance_weight``
            in the cross-entropy (0: off).
        small_instance_weight: that weight.
    """

    def __init__(self, thing_ids, sigma=8.0, center_weight=200.0, offset_weight=0.01,
                 top_k=0.2, label_divisor=LABEL_DIVISOR, ignore_index=255, small_instance_area=0,
                 small_instance_weight=3.0):
        self.thing_ids, self.sigma, self.label_divisor = tuple(thing_ids), sigma, label_divisor
        self.center_weight, self.offset_weight, self.top_k = center_weight, offset_weight, top_k
        self.ignore_index = ignore_index
        # the data-pipeline hook with this loss's settings (sigma, void convention)
        self.targets = PanopticDeepLabTargets(thing_ids, sigma, label_divisor, ignore_index,
                                              small_instance_area, small_instance_weight)

    def parts(self, outputs, targets):
        """The three weighted terms: dict ``semantic``, ``center``, ``offset`` (scalar tensors).

        Args:
            outputs: the model's dict (``semantic`` (N, K, H, W), ``center``, ``offset``).
            targets: dict of batched targets (``semantic``, ``semantic_weight``, ``center``,
                ``center_weight``, ``offset``, ``offset_weight``; tensors or arrays), or
                panoptic maps (N, H, W).
        """
        if not isinstance(targets, Mapping):
            pans = targets.numpy() if isinstance(targets, paddle.Tensor) else np.asarray(targets)
            targets = self.targets.batch(pans)
        missing = {"semantic", "semantic_weight", "center", "center_weight", "offset",
                   "offset_weight"} - set(targets)
        if missing:
            raise ValueError(f"PanopticDeepLabLoss: targets lack {sorted(missing)}; build them with "
                             "panoptic_deeplab_targets (e.g. PanopticScenes(..., targets=loss_fn.targets))")
        t = {k: v if isinstance(v, paddle.Tensor) else paddle.to_tensor(np.asarray(v)) for k, v in targets.items()}
        semantic = t["semantic"].astype("int64")
        k_classes = outputs["semantic"].shape[1]
        labelled = semantic != self.ignore_index
        bad = labelled & ((semantic >= k_classes) | (semantic < 0))
        if bool(bad.any()):
            cats = np.unique(semantic.numpy()[bad.numpy()])
            raise ValueError(f"panoptic labels hold categories {cats[:10].tolist()} outside "
                             f"[0, {k_classes}) that are not void (ignore_index={self.ignore_index})")
        ce = F.cross_entropy(outputs["semantic"], semantic, axis=1, reduction="none",
                             ignore_index=self.ignore_index)
        ce = (ce.reshape(semantic.shape) * t["semantic_weight"].astype("float32")).flatten()
        n_valid = int(labelled.astype("int64").sum())
        # void pixels have loss 0, so the k hardest of all pixels are the k hardest labelled ones
        k = max(1, int(self.top_k * n_valid))
        sem = paddle.topk(ce, k)[0].mean()
        cw = t["center_weight"].astype("float32")
        center = (((outputs["center"][:, 0] - t["center"]) ** 2) * cw).sum() / paddle.clip(cw.sum(), min=1.0)
        # offset_weight is 1 on thing instances only, so void pixels are already excluded
        wt = t["offset_weight"].astype("float32").unsqueeze(1)
        offset = ((outputs["offset"] - t["offset"]).abs() * wt).sum() / (wt.sum() * 2 + 1)
        return dict(semantic=sem, center=self.center_weight * center, offset=self.offset_weight * offset)

    def __call__(self, outputs, targets):
        return sum(self.parts(outputs, targets).values())


# ----------------------------------------------------------------- post-processing
def find_instance_centers(heatmap, threshold=0.1, nms_kernel=7, top_k=200):
    """Instance centres: pixels equal to the max of their window (keypoint NMS by max-pooling)
    and above a threshold.

    Args:
        heatmap: (H, W) array or tensor.
        threshold: minimum value of a centre.
        nms_kernel: side of the max-pooling window.
        top_k: keep at most this many, the highest.

    Returns:
        int (k, 2) array of (y, x), highest first.
    """
    heat = heatmap if isinstance(heatmap, paddle.Tensor) else paddle.to_tensor(np.asarray(heatmap, np.float32))
    heat = heat.reshape([1, 1] + list(heat.shape[-2:]))
    pooled = F.max_pool2d(heat, nms_kernel, stride=1, padding=nms_kernel // 2)
    heat = heat[0, 0].numpy()
    keep = (heat == pooled[0, 0].numpy()) & (heat > threshold)
    ys, xs = np.nonzero(keep)
    order = np.argsort(-heat[ys, xs], kind="mergesort")[:top_k]
    return np.stack([ys[order], xs[order]], 1) if len(order) else np.zeros((0, 2), np.int64)


def group_pixels(centers, offset, thing_mask):
    """Group thing pixels: each goes to the centre nearest to where its offset points.

    Args:
        centers: (k, 2) centres as (y, x).
        offset: (2, H, W) predicted (dy, dx).
        thing_mask: (H, W) bool, the pixels to group.

    Returns:
        int32 (H, W) instance ids 1..k in the order of ``centers``; 0 for non-thing pixels
        (and everywhere when there is no centre).
    """
    h, w = thing_mask.shape
    ids = np.zeros((h, w), np.int32)
    if len(centers) == 0:
        return ids
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    pointed = np.stack([yy + offset[0], xx + offset[1]], -1)[thing_mask]          # (P, 2)
    d2 = ((pointed[:, None, :] - np.asarray(centers, np.float32)[None]) ** 2).sum(-1)  # (P, k)
    ids[thing_mask] = d2.argmin(1) + 1
    return ids


def merge_semantic_and_instance(semantic, instance, thing_ids, stuff_area=2048,
                                label_divisor=LABEL_DIVISOR, void=None):
    """Merge semantic and instance maps: each instance takes the majority class of its
    pixels (a class vote: 多数投票); stuff pixels keep their class unless the class covers
    fewer than ``stuff_area`` pixels (then void); thing pixels without an instance are void.

    Args:
        semantic: (H, W) class map.
        instance: (H, W) instance ids (0 = none).
        thing_ids: the thing classes.
        stuff_area: minimum pixels of a stuff class.
        label_divisor: the panoptic encoding's divisor.
        void: value of void pixels (default ``255 * label_divisor``: category 255, the
            ``common.labels.PANOPTIC_VOID`` of the default divisor).

    Returns:
        int64 (H, W) panoptic map ``class * label_divisor + id``.
    """
    void = 255 * label_divisor if void is None else void
    semantic = np.asarray(semantic).astype(np.int64)
    instance = np.asarray(instance).astype(np.int64)
    pan = np.full(semantic.shape, void, np.int64)
    is_thing = np.isin(semantic, thing_ids)
    k = max(int(semantic.max()) + 1, 1)
    if instance.max() > 0:
        # votes[i, c]: pixels of instance i predicted as class c (only thing classes vote)
        votes = np.bincount((instance * k + semantic)[is_thing & (instance > 0)],
                            minlength=(instance.max() + 1) * k).reshape(-1, k)
        cls = votes.argmax(1)
        sel = instance > 0
        pan[sel] = cls[instance[sel]] * label_divisor + instance[sel]
    stuff = ~is_thing
    area = np.bincount(semantic[stuff], minlength=k)
    big = stuff & (area[semantic] >= stuff_area)
    pan[big] = semantic[big] * label_divisor
    return pan


def panoptic_from_outputs(semantic, center, offset, thing_ids, threshold=0.1, nms_kernel=7,
                          top_k=200, stuff_area=2048, label_divisor=LABEL_DIVISOR):
    """The whole post-processing of one image: centres, grouping, merging.

    Args:
        semantic: (H, W) class map.
        center: (H, W) heatmap.
        offset: (2, H, W) offsets (dy, dx).
        thing_ids: the thing classes.
        threshold: see ``find_instance_centers``.
        nms_kernel: see ``find_instance_centers``.
        top_k: see ``find_instance_centers``.
        stuff_area: see ``merge_semantic_and_instance``.
        label_divisor: the panoptic encoding's divisor.

    Returns:
        int64 (H, W) panoptic map.
    """
    centers = find_instance_centers(center, threshold, nms_kernel, top_k)
    instance = group_pixels(centers, offset, np.isin(semantic, thing_ids))
    return merge_semantic_and_instance(semantic, instance, thing_ids, stuff_area, label_divisor)


def center_sigma(image_size):
    """Gaussian sigma of the centre heatmap for our image size: size / 24 (4 pixels at 96).

    The paper's 8 pixels are for 1024-pixel images; scaled linearly that is 0.75 pixels at
    96. Even at 2 pixels the blobs were so small that a CPU-budget model never predicted
    peaks above ~0.2 (measured: things PQ 0.04); at 4 pixels, still well inside our smallest
    objects, peaks reach 0.7-1.

    Args:
        image_size: side of the training images.

    Returns:
        float sigma in pixels.
    """
    return image_size / 24.0


@register("panoptic_deeplab")
def panoptic_deeplab(num_classes, **kwargs):
    return PanopticDeepLab(num_classes, **kwargs)
