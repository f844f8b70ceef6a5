"""Panoptic scenes for the bottom-up models of Day 6 (SOLO, Panoptic-DeepLab), and the
training targets of Panoptic-DeepLab built in the data pipeline.

An item is ``(image, panoptic)``: the normalised float32 (3, H, W) image and the int64
(H, W) map ``class * LABEL_DIVISOR + instance``. With ``targets=fn`` an item is
``(image, fn(panoptic))`` instead: the targets are built per item by the dataset (after
the flip, in DataLoader workers when ``num_workers > 0``) and batched by the DataLoader's
collate, so the loss only compares tensors. Panoptic-DeepLab's targets (centre heatmap,
offsets and their weights) come from ``panoptic_deeplab_targets``; ``PanopticDeepLabTargets``
is that function as a dataset hook. Only flips augment: a nearest resize could split an
instance's mask.
"""
from __future__ import annotations

import numpy as np

from .datasets import SegmentationDataset
from .synthetic import LABEL_DIVISOR, get_variant, make_scene
from .transforms import RandomFlip


class PanopticScenes(SegmentationDataset):
    """``num_scenes`` synthetic scenes with panoptic labels; ``flip`` mirrors at random;
    ``targets`` (a callable panoptic map -> dict of arrays, e.g. ``PanopticDeepLabTargets``)
    replaces the label of each item by the training targets built from it."""

    def __init__(self, num_scenes, image_size=96, seed=0, variant="scenes", flip=False,
                 targets=None):
        super().__init__(RandomFlip() if flip else None)
        var = get_variant(variant)
        self.classes, self.num_classes = var.classes, var.num_classes
        self.thing_ids, self.stuff_ids = var.thing_ids, var.stuff_ids
        self.targets = targets
        self.scenes = [make_scene(np.random.default_rng([seed, i]), image_size, variant)
                       for i in range(num_scenes)]

    def __len__(self):
        return len(self.scenes)

    def load(self, i):
        s = self.scenes[i]
        return s["image"], s["panoptic"].astype(np.int64)

    def __getitem__(self, idx):
        image, label = super().__getitem__(idx)          # flipped first, then targets
        return (image, self.targets(label)) if self.targets is not None else (image, label)


def panoptic_splits(budget, variant="scenes", seed=0, flip=True, targets=None):
    """Training and validation panoptic scenes with the sizes of a ``runtime.budget()``.

    Args:
        budget: a ``runtime.Budget`` (image_size, train_scenes, val_scenes).
        variant: the synthetic scene variant.
        seed: seed of the training scenes (validation uses ``seed + 10000``).
        flip: random flips on the training set.
        targets: per-item target builder for the training set only (see ``PanopticScenes``);
            validation keeps the panoptic maps that PQ is computed against.

    Returns:
        (train, val) ``PanopticScenes``.
    """
    return (PanopticScenes(budget.train_scenes, budget.image_size, seed, variant, flip, targets),
            PanopticScenes(budget.val_scenes, budget.image_size, seed + 10_000, variant))


def instances_from_panoptic(panoptic, thing_ids, label_divisor=LABEL_DIVISOR):
    """Thing instances of one panoptic map, ordered by segment id.

    Args:
        panoptic: (H, W) map ``class * label_divisor + instance``.
        thing_ids: the thing classes.
        label_divisor: the panoptic encoding's divisor.

    Returns:
        dict ``masks`` (n, H, W) bool and ``labels`` (n,) as indices into ``thing_ids``.
    """
    pan = np.asarray(panoptic).astype(np.int64)
    ids = np.unique(pan)
    ids = ids[np.isin(ids // label_divisor, thing_ids) & (ids % label_divisor > 0)]
    masks = pan[None] == ids[:, None, None]
    lookup = {c: k for k, c in enumerate(thing_ids)}
    labels = np.array([lookup[int(c)] for c in ids // label_divisor], np.int64)
    return dict(masks=masks, labels=labels)


# ------------------------------------------------------------ Panoptic-DeepLab targets
def panoptic_deeplab_targets(panoptic, thing_ids, sigma=8.0, label_divisor=LABEL_DIVISOR,
                             ignore_index=255, small_instance_area=0, small_instance_weight=3.0):
    """Panoptic-DeepLab's training targets of one panoptic map (the one place they are built).

    Args:
        panoptic: (H, W) integer map ``class * label_divisor + instance``; a negative value
            or class ``ignore_index`` is void (unlabelled).
        thing_ids: the thing classes; their pixels with instance > 0 form instances.
        sigma: standard deviation in pixels of the Gaussian at each centre.
        label_divisor: the panoptic encoding's divisor (``LABEL_DIVISOR``).
        ignore_index: the class of void pixels (the ``semantic`` target's ignore value).
        small_instance_area: the paper weights the semantic loss of pixels of instances
            smaller than 64 x 64 pixels by 3; here instances of fewer than this many pixels
            get ``small_instance_weight`` (0: off).
        small_instance_weight: that weight.

    Returns:
        dict of arrays: ``semantic`` (H, W) int64 class, ``ignore_index`` on void;
        ``center`` (H, W) float32, the max over instances of exp(-d^2 / 2 sigma^2) around
        each instance's centre of mass; ``center_weight`` (H, W) float32, 0 on void, 1
        elsewhere; ``semantic_weight`` (H, W) float32, 0 on void, ``small_instance_weight``
        on small instances, 1 elsewhere; ``offset`` (2, H, W) float32, the vector (dy, dx) from each thing pixel
        to its instance's centre (0 elsewhere); ``offset_weight`` (H, W) float32, 1 on
        thing-instance pixels.
    """
    pan = np.asarray(panoptic)
    if pan.ndim != 2:
        raise ValueError(f"panoptic_deeplab_targets: panoptic must be one (H, W) map, got shape {pan.shape}")
    pan = pan.astype(np.int64)
    h, w = pan.shape
    cls = pan // label_divisor
    void = (pan < 0) | (cls == ignore_index)
    inst = np.isin(cls, thing_ids) & (pan % label_divisor > 0) & ~void
    # segment index per instance pixel; centres of mass by bincount (no loop over pixels)
    segs, seg_of = np.unique(pan[inst], return_inverse=True)
    ys, xs = np.nonzero(inst)          # row-major, the order of pan[inst]
    count = np.bincount(seg_of, minlength=len(segs))
    cy = np.bincount(seg_of, ys, minlength=len(segs)) / np.maximum(count, 1)
    cx = np.bincount(seg_of, xs, minlength=len(segs)) / np.maximum(count, 1)
    center = np.zeros((h, w), np.float32)
    # exp(-(dy^2 + dx^2) / 2s^2) = exp(-dy^2 / 2s^2) * exp(-dx^2 / 2s^2): one outer product
    # of two 1-D Gaussians per instance instead of a 2-D exp over the whole map
    gy = np.exp(-(np.arange(h)[None] - cy[:, None]) ** 2 / (2 * sigma ** 2)).astype(np.float32)
    gx = np.exp(-(np.arange(w)[None] - cx[:, None]) ** 2 / (2 * sigma ** 2)).astype(np.float32)
    g = np.empty((h, w), np.float32)
    for a, b in zip(gy, gx):
        np.maximum(center, np.outer(a, b, out=g), out=center)
    offset = np.zeros((2, h, w), np.float32)
    offset[0][inst] = cy[seg_of] - ys
    offset[1][inst] = cx[seg_of] - xs
    semantic_weight = (~void).astype(np.float32)
    if small_instance_area > 0 and len(segs):
        small = count < small_instance_area
        semantic_weight[ys, xs] = np.where(small[seg_of], np.float32(small_instance_weight), 1)
    return dict(semantic=np.where(void, ignore_index, cls), semantic_weight=semantic_weight,
                center=center, center_weight=(~void).astype(np.float32), offset=offset,
                offset_weight=inst.astype(np.float32))


class PanopticDeepLabTargets:
    """``panoptic_deeplab_targets`` with fixed settings, as the ``targets`` hook of
    ``PanopticScenes`` (or any dataset's per-item transform): ``fn(panoptic) -> dict``.
    ``batch(panoptic_maps)`` stacks the targets of (N, H, W) maps (what the DataLoader's
    collate makes of the per-item dicts)."""

    def __init__(self, thing_ids, sigma=8.0, label_divisor=LABEL_DIVISOR, ignore_index=255,
                 small_instance_area=0, small_instance_weight=3.0):
        self.thing_ids, self.sigma = tuple(int(c) for c in thing_ids), float(sigma)
        self.label_divisor, self.ignore_index = label_divisor, ignore_index
        self.small_instance_area, self.small_instance_weight = small_instance_area, small_instance_weight

    def __call__(self, panoptic):
        return panoptic_deeplab_targets(panoptic, self.thing_ids, self.sigma, self.label_divisor,
                                        self.ignore_index, self.small_instance_area,
                                        self.small_instance_weight)

    def batch(self, panoptic_maps):
        """Targets of (N, H, W) maps, each array stacked along a new first axis."""
        items = [self(p) for p in np.asarray(panoptic_maps)]
        return {k: np.stack([t[k] for t in items]) for k in items[0]}

    def __repr__(self):
        return (f"PanopticDeepLabTargets(thing_ids={self.thing_ids}, sigma={self.sigma}, "
                f"label_divisor={self.label_divisor}, ignore_index={self.ignore_index}, "
                f"small_instance_area={self.small_instance_area}, "
                f"small_instance_weight={self.small_instance_weight})")
