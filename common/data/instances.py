"""Synthetic scenes with instance and panoptic targets, for the models of Day 6.

An item is ``(image, target)``: the normalised float32 (3, H, W) image and a dict of
NumPy arrays ``boxes`` (n, 4) float32 x0, y0, x1, y1, ``labels`` (n,) int64 thing class
ids, ``masks`` (n, H, W) bool, ``semantic`` (H, W) int64 and ``panoptic`` (H, W) int64
(``class * LABEL_DIVISOR + id``). ``collate_instances`` stacks the images and keeps the targets a
list (each image has its own number of objects).

As in ``SyntheticScenes``, the index may be ``(index, seed)``; with a seed the image is
flipped left-right with probability ``flip`` (masks, boxes and maps with it).

Model-specific training targets are built here, in the data pipeline (so DataLoader
workers build them while the model trains), by a ``target_transform`` that adds keys to
each target: ``GridTargets`` (SOLO's grid cells) and ``PanopticHeadTargets`` (UPSNet's
panoptic-head labels). Each model gives its own: ``model.target_transform()``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import paddle

from .synthetic import LABEL_DIVISOR, get_variant, make_scene
from .transforms import to_tensor_arrays


def collate_instances(items):
    """List of ``(image, target)`` -> (images (N, 3, H, W) float32, list of targets)."""
    return np.stack([x for x, _ in items]), [t for _, t in items]


class SceneInstances(paddle.io.Dataset):
    """``num_scenes`` synthetic scenes with every annotation, generated once.

    Scene i uses the seed sequence ``(seed, i)`` (the scenes of ``SyntheticScenes`` with
    the same seed). Attributes: ``classes``, ``num_classes``, ``thing_ids``, ``stuff_ids``,
    ``collate`` (the batch collate the ``Trainer`` uses) and ``target_transform``.

    Args:
        num_scenes: number of scenes.
        image_size: side, or (H, W).
        seed: scene i uses the seed sequence (seed, i).
        variant: the scene variant (``make_scene``).
        flip: probability of a left-right flip of an item fetched with a seed.
        target_transform: ``f(target, rng)`` -> target, applied to every item (e.g. a
            model's ``target_transform()``); ``rng`` is a NumPy generator seeded by the
            item's ``(seed, index)``, so random targets are a function of the step.
    """

    collate = staticmethod(collate_instances)

    def __init__(self, num_scenes, image_size=96, seed=0, variant="scenes", flip=0.0,
                 target_transform=None):
        var = get_variant(variant)
        self.classes, self.num_classes = var.classes, var.num_classes
        self.thing_ids, self.stuff_ids = var.thing_ids, var.stuff_ids
        self.label_divisor = LABEL_DIVISOR
        self.flip, self.target_transform = flip, target_transform
        self.scenes = [make_scene(np.random.default_rng([seed, i]), image_size, variant)
                       for i in range(num_scenes)]

    def __len__(self):
        return len(self.scenes)

    def __getitem__(self, idx):
        i, seed = (idx if isinstance(idx, tuple) else (idx, None))
        s = self.scenes[int(i)]
        image, masks = s["image"], s["masks"]
        semantic, panoptic, boxes = s["semantic"], s["panoptic"], s["boxes"].copy()
        if seed is not None and self.flip and np.random.default_rng([seed, int(i)]).random() < self.flip:
            w = image.shape[1]
            image, masks = image[:, ::-1], masks[:, :, ::-1]
            semantic, panoptic = semantic[:, ::-1], panoptic[:, ::-1]
            boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
        target = dict(boxes=boxes.astype(np.float32), labels=s["labels"].astype(np.int64),
                      masks=np.ascontiguousarray(masks),
                      semantic=np.ascontiguousarray(semantic, dtype=np.int64),
                      panoptic=np.ascontiguousarray(panoptic, dtype=np.int64))
        if self.target_transform is not None:
            rng = np.random.default_rng([0 if seed is None else seed, int(i), 1])
            target = self.target_transform(target, rng)
        return to_tensor_arrays(image), target


def targets_to_tensors(targets):
    """Per-image target dicts of NumPy arrays -> the same with Paddle tensors (bool masks
    become float32 0/1; lists, e.g. one array per pyramid level, are converted item by item)."""
    def conv(v):
        if isinstance(v, paddle.Tensor):
            return v
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        v = np.asarray(v)
        return paddle.to_tensor(v.astype(np.float32) if v.dtype == bool else v)

    return [{k: conv(v) for k, v in t.items()} for t in targets]


def _numpy(x):
    return x.numpy() if isinstance(x, paddle.Tensor) else np.asarray(x)


# ----------------------------------------------------------------- SOLO's grid targets
def pyramid_size(n, level):
    """Size of a feature map at stride ``2 ** level`` of an input of size ``n``: every
    stride-2 layer of the ResNet (and the P6 subsample) maps n to ceil(n / 2)."""
    for _ in range(level):
        n = (n + 1) // 2
    return n


def assign_grid(masks, labels, image_shape, mask_shapes, scale_ranges, num_grids, sigma):
    """SOLO's targets of one image: per level a category grid (S, S) (-1 = background)
    and the positive cells as ``(i, j, soft mask at the level's mask resolution)``.

    An object goes to every level whose scale range holds sqrt(its area); the cells
    of its centre region (centre of mass +- sigma/2 of the box, at most one cell from
    the centre cell) are positive. Larger objects are placed first, so a smaller one
    wins a shared cell.

    Args:
        masks: (n, H, W) bool instance masks.
        labels: (n,) the value written in the grid.
        image_shape: (H, W).
        mask_shapes: (h, w) of each level's mask output.
        scale_ranges: the model's (``SOLO``).
        num_grids: the model's.
        sigma: the model's.

    Returns:
        A list with one ``(cate, [(i, j, mask), ...])`` per level.
    """
    h, w = image_shape
    masks = np.asarray(masks, bool)
    labels = np.asarray(labels)
    areas = masks.reshape(len(masks), h * w).sum(1)
    out = []
    for (lo, hi), s, mshape in zip(scale_ranges, num_grids, mask_shapes):
        cate = np.full((s, s), -1, np.int64)
        pos = {}
        for k in np.argsort(-areas, kind="mergesort"):
            if not (lo <= math.sqrt(areas[k]) <= hi) or areas[k] == 0:
                continue
            ys, xs = np.nonzero(masks[k])
            cy, cx = ys.mean() + 0.5, xs.mean() + 0.5
            hh = 0.5 * sigma * (ys.max() + 1 - ys.min())
            hw = 0.5 * sigma * (xs.max() + 1 - xs.min())
            ci, cj = int(cy / h * s), int(cx / w * s)
            top = max(int((cy - hh) / h * s), 0, ci - 1)
            bottom = min(int((cy + hh) / h * s), s - 1, ci + 1)
            left = max(int((cx - hw) / w * s), 0, cj - 1)
            right = min(int((cx + hw) / w * s), s - 1, cj + 1)
            cate[top:bottom + 1, left:right + 1] = labels[k]
            # soft target: the fraction of each coarse mask pixel the object covers
            small = cv2.resize(masks[k].astype(np.float32), (mshape[1], mshape[0]),
                               interpolation=cv2.INTER_AREA)
            for i in range(top, bottom + 1):
                for j in range(left, right + 1):
                    pos[(i, j)] = small
        out.append((cate, [(i, j, m) for (i, j), m in sorted(pos.items())]))
    return out


class GridTargets:
    """SOLO's training targets as a ``target_transform``: adds to each target, per level,
    ``grid_cate`` (S, S) int64 (index into ``thing_ids``, -1 = background), ``grid_cells``
    (P, 2) int64 (row, column of each positive cell) and ``grid_masks`` (P, h, w) float32.

    Args:
        thing_ids: the dataset class ids of the model's categories (label -> index).
        scale_ranges: as ``SOLO``.
        num_grids: as ``SOLO``.
        sigma: as ``SOLO``.
        levels: FPN level of each grid (0 = P2, stride 4); its mask output is at twice the
            level's resolution (``pyramid_size(H, level + 2) * 2``).
    """

    def __init__(self, thing_ids, scale_ranges, num_grids, sigma, levels):
        self.thing_ids, self.scale_ranges = tuple(thing_ids), tuple(scale_ranges)
        self.num_grids, self.sigma, self.levels = tuple(num_grids), sigma, tuple(levels)

    def mask_shapes(self, image_shape):
        """(h, w) of each level's mask output for images of ``image_shape``."""
        return [tuple(2 * pyramid_size(n, lv + 2) for n in image_shape) for lv in self.levels]

    def __call__(self, target, rng=None):
        masks, labels = _numpy(target["masks"]).astype(bool), _numpy(target["labels"])
        lut = {c: k for k, c in enumerate(self.thing_ids)}
        bad = sorted(set(labels.tolist()) - set(lut))
        if bad:
            raise ValueError(f"labels {bad} are not among the model's thing_ids {self.thing_ids}")
        index = np.array([lut[c] for c in labels.tolist()], np.int64)
        image_shape = masks.shape[-2:]
        shapes = self.mask_shapes(image_shape)
        out = dict(target, grid_cate=[], grid_cells=[], grid_masks=[])
        for (cate, pos), (hm, wm) in zip(
                assign_grid(masks, index, image_shape, shapes, self.scale_ranges,
                            self.num_grids, self.sigma), shapes):
            out["grid_cate"].append(cate)
            out["grid_cells"].append(np.array([(i, j) for i, j, _ in pos], np.int64).reshape(-1, 2))
            out["grid_masks"].append(np.stack([m for _, _, m in pos]).astype(np.float32)
                                     if pos else np.zeros((0, hm, wm), np.float32))
        return out


# ------------------------------------------------------- UPSNet's panoptic-head targets
def panoptic_head_target(semantic, masks, shown, stuff_ids, ignore_index=255):
    """Per-pixel channel of UPSNet's panoptic logits: the index of the stuff class,
    ``len(stuff_ids) + j`` for the j-th shown instance, the unknown channel
    (``len(stuff_ids) + number shown``) for hidden instances, ``ignore_index`` elsewhere.

    Args:
        semantic: (H, W) class ids.
        masks: (n, H, W) bool.
        shown: (n,) bool.
        stuff_ids: the stuff class ids, in channel order.

    Returns:
        (H, W) int64.
    """
    semantic, masks, shown = np.asarray(semantic), np.asarray(masks, bool), np.asarray(shown, bool)
    ns, n = len(stuff_ids), int(shown.sum())
    lut = np.full(max(int(semantic.max(initial=0)), max(stuff_ids)) + 1, ignore_index, np.int64)
    lut[list(stuff_ids)] = np.arange(ns)
    target = lut[semantic]
    if len(masks):
        channel = np.where(shown, ns + np.cumsum(shown) - 1, ns + n)
        hit = masks.any(0)
        target[hit] = channel[masks.argmax(0)[hit]]
    return target


class PanopticHeadTargets:
    """UPSNet's panoptic-head targets as a ``target_transform``: each instance is hidden
    with probability ``unknown_fraction`` (drawn from the item's ``rng``); adds ``shown``
    (n,) bool and ``panoptic_target`` (H, W) int64 (``panoptic_head_target``).

    Args:
        stuff_ids: the model's stuff class ids.
        unknown_fraction: chance to hide an instance.
        ignore_index: the target of pixels that are neither stuff nor an instance.
    """

    def __init__(self, stuff_ids, unknown_fraction=0.2, ignore_index=255):
        self.stuff_ids, self.unknown_fraction = tuple(stuff_ids), unknown_fraction
        self.ignore_index = ignore_index

    def __call__(self, target, rng=None):
        rng = np.random.default_rng() if rng is None else rng
        masks = _numpy(target["masks"]).astype(bool)
        shown = rng.random(len(masks)) >= self.unknown_fraction
        return dict(target, shown=shown, panoptic_target=panoptic_head_target(
            _numpy(target["semantic"]), masks, shown, self.stuff_ids, self.ignore_index))


def instance_splits(budget, variant="scenes", seed=0, flip=0.5, target_transform=None):
    """Training and validation ``SceneInstances`` with the sizes of a ``runtime.budget()``;
    the validation scenes use another seed, so they are never training scenes.

    Args:
        budget: a ``runtime.budget()`` (train_scenes, val_scenes, image_size).
        variant: the scene variant.
        seed: seed of the training scenes (validation: seed + 10000).
        flip: flip probability of the training items.
        target_transform: a model's training targets (``model.target_transform()``), given
            to the training set.

    Returns:
        (train, val) datasets.
    """
    train = SceneInstances(budget.train_scenes, budget.image_size, seed, variant, flip,
                           target_transform)
    val = SceneInstances(budget.val_scenes, budget.image_size, seed + 10_000, variant)
    return train, val
