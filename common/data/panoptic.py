"""Panoptic scenes for the bottom-up models of Day 6 (SOLO, Panoptic-DeepLab).

An item is ``(image, panoptic)``: the normalised float32 (3, H, W) image and the int64
(H, W) map ``class * LABEL_DIVISOR + instance``. One label map carries everything, so the
course's ``Trainer`` (which passes ``(outputs, labels)`` to a loss) trains these models
too: each model's loss builds its own targets (grid cells, centre heatmaps, offsets) from
the panoptic map. Only flips augment: a nearest resize could split an instance's mask.
"""
from __future__ import annotations

import numpy as np

from .datasets import SegmentationDataset
from .synthetic import LABEL_DIVISOR, get_variant, make_scene
from .transforms import RandomFlip


class PanopticScenes(SegmentationDataset):
    """``num_scenes`` synthetic scenes with panoptic labels; ``flip`` mirrors at random."""

    def __init__(self, num_scenes, image_size=96, seed=0, variant="scenes", flip=False):
        super().__init__(RandomFlip() if flip else None)
        var = get_variant(variant)
        self.classes, self.num_classes = var.classes, var.num_classes
        self.thing_ids, self.stuff_ids = var.thing_ids, var.stuff_ids
        self.scenes = [make_scene(np.random.default_rng([seed, i]), image_size, variant)
                       for i in range(num_scenes)]

    def __len__(self):
        return len(self.scenes)

    def load(self, i):
        s = self.scenes[i]
        return s["image"], s["panoptic"].astype(np.int64)


def panoptic_splits(budget, variant="scenes", seed=0, flip=True):
    """(train, val) panoptic datasets with the sizes of a ``runtime.budget()``."""
    return (PanopticScenes(budget.train_scenes, budget.image_size, seed, variant, flip),
            PanopticScenes(budget.val_scenes, budget.image_size, seed + 10_000, variant))


def instances_from_panoptic(panoptic, thing_ids, label_divisor=LABEL_DIVISOR):
    """Thing instances of one panoptic map: ``masks`` (n, H, W) bool and ``labels`` (n,)
    as indices into ``thing_ids`` (0 .. len(thing_ids) - 1), ordered by segment id."""
    pan = np.asarray(panoptic).astype(np.int64)
    ids = np.unique(pan)
    ids = ids[np.isin(ids // label_divisor, thing_ids) & (ids % label_divisor > 0)]
    masks = pan[None] == ids[:, None, None]
    lookup = {c: k for k, c in enumerate(thing_ids)}
    labels = np.array([lookup[int(c)] for c in ids // label_divisor], np.int64)
    return dict(masks=masks, labels=labels)
