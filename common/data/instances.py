"""Synthetic scenes with instance and panoptic targets, for the models of Day 6.

An item is ``(image, target)``: the normalised float32 (3, H, W) image and a dict of
NumPy arrays ``boxes`` (n, 4) float32 x0, y0, x1, y1, ``labels`` (n,) int64 thing class
ids, ``masks`` (n, H, W) bool, ``semantic`` (H, W) int64 and ``panoptic`` (H, W) int64
(``class * LABEL_DIVISOR + id``). ``collate_instances`` stacks the images and keeps the targets a
list (each image has its own number of objects).

As in ``SyntheticScenes``, the index may be ``(index, seed)``; with a seed the image is
flipped left-right with probability ``flip`` (masks, boxes and maps with it).
"""
from __future__ import annotations

import numpy as np
import paddle

from .synthetic import LABEL_DIVISOR, get_variant, make_scene
from .transforms import to_tensor_arrays


class SceneInstances(paddle.io.Dataset):
    """``num_scenes`` synthetic scenes with every annotation, generated once.

    Scene i uses the seed sequence ``(seed, i)`` (the scenes of ``SyntheticScenes`` with
    the same seed). Attributes: ``classes``, ``num_classes``, ``thing_ids``, ``stuff_ids``.
    """

    def __init__(self, num_scenes, image_size=96, seed=0, variant="scenes", flip=0.0):
        var = get_variant(variant)
        self.classes, self.num_classes = var.classes, var.num_classes
        self.thing_ids, self.stuff_ids = var.thing_ids, var.stuff_ids
        self.label_divisor = LABEL_DIVISOR
        self.flip = flip
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
        return to_tensor_arrays(image), target


def collate_instances(items):
    """List of ``(image, target)`` -> (images (N, 3, H, W) float32, list of targets)."""
    return np.stack([x for x, _ in items]), [t for _, t in items]


def instance_splits(budget, variant="scenes", seed=0, flip=0.5):
    """(train, val) ``SceneInstances`` with the sizes of a ``runtime.budget()``; the
    validation scenes use another seed, so they are never training scenes."""
    train = SceneInstances(budget.train_scenes, budget.image_size, seed, variant, flip)
    val = SceneInstances(budget.val_scenes, budget.image_size, seed + 10_000, variant)
    return train, val
