"""Joint image/label transforms: geometry applied to both, labels resized with nearest.

Each transform is ``t(image, label, rng) -> (image, label)`` with ``image`` (H, W, 3) and
``label`` (H, W); the generator ``rng`` makes every random choice, so a sample's
augmentation is a pure function of its seed (the trainer relies on this to resume exactly).
"""
from __future__ import annotations

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _check_pair(image, label, name):
    """Geometry applied to an image and a label of different sizes misaligns them silently."""
    if np.shape(image)[:2] != np.shape(label)[:2]:
        raise ValueError(f"{name}: image is {np.shape(image)[1]}x{np.shape(image)[0]} but label is "
                         f"{np.shape(label)[1]}x{np.shape(label)[0]} (width x height); they must match")


class Compose:
    """Apply ``transforms`` in order, all drawing from the same ``rng``.

    Args:
        transforms: joint transforms ``t(image, label, rng) -> (image, label)``.
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, label, rng):
        for t in self.transforms:
            image, label = t(image, label, rng)
        return image, label


class RandomScale:
    """Resize both by a factor drawn from ``scales`` (a (min, max) range): multi-scale training.

    Args:
        scales: (min, max) of the uniform scale factor, 0 < min <= max.
    """

    def __init__(self, scales=(0.5, 2.0)):
        lo, hi = scales
        if not 0 < lo <= hi:
            raise ValueError(f"RandomScale: scales must be (min, max) with 0 < min <= max, got {scales!r}")
        self.lo, self.hi = lo, hi

    def __call__(self, image, label, rng):
        _check_pair(image, label, "RandomScale")
        s = rng.uniform(self.lo, self.hi)
        h, w = label.shape
        size = (max(1, round(w * s)), max(1, round(h * s)))
        return (cv2.resize(image, size, interpolation=cv2.INTER_LINEAR),
                # INTER_NEAREST samples at floor(x / s), off by up to a pixel from the
                # half-pixel grid INTER_LINEAR uses; NEAREST_EXACT shares that grid.
                cv2.resize(label, size, interpolation=cv2.INTER_NEAREST_EXACT))


class RandomCrop:
    """Crop ``size``; an input smaller than that is padded first (image 0, label ``ignore_index``).

    Args:
        size: int (square) or (height, width) of the crop.
        ignore_index: label value of the padding, so it is not scored.
    """

    def __init__(self, size, ignore_index=255):
        self.h, self.w = (size, size) if np.isscalar(size) else size
        if int(self.h) != self.h or int(self.w) != self.w or self.h < 1 or self.w < 1:
            raise ValueError(f"RandomCrop: size must be a positive int or (height, width) of "
                             f"positive ints, got {size!r}")
        self.h, self.w = int(self.h), int(self.w)
        self.ignore_index = ignore_index

    def __call__(self, image, label, rng):
        _check_pair(image, label, "RandomCrop")
        h, w = label.shape
        ph, pw = max(self.h - h, 0), max(self.w - w, 0)
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
            label = np.pad(label, ((0, ph), (0, pw)), constant_values=self.ignore_index)
            h, w = label.shape
        y, x = rng.integers(0, h - self.h + 1), rng.integers(0, w - self.w + 1)
        return image[y:y + self.h, x:x + self.w], label[y:y + self.h, x:x + self.w]


class RandomFlip:
    """Mirror left-right with probability ``p``.

    Args:
        p: probability of a flip, in [0, 1].
    """

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = p

    def __call__(self, image, label, rng):
        _check_pair(image, label, "RandomFlip")
        if rng.random() < self.p:
            return image[:, ::-1], label[:, ::-1]
        return image, label


def to_tensor_arrays(image, label=None, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """uint8 (H, W, 3) -> normalised float32 (3, H, W); label -> int64 (H, W).

    Args:
        image: uint8 RGB (H, W, 3).
        label: optional (H, W) class map.
        mean: per-channel mean of [0, 1] pixels (ImageNet's, as the pretrained backbones).
        std: per-channel standard deviation (ImageNet's).

    Returns:
        the float32 (3, H, W) array, or (it, int64 label) when ``label`` is given.
    """
    x = ((np.asarray(image, np.float32) / 255.0 - mean) / std).transpose(2, 0, 1)
    x = np.ascontiguousarray(x)
    if label is None:
        return x
    return x, np.ascontiguousarray(label, dtype=np.int64)


def denormalize(x, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Inverse of ``to_tensor_arrays`` for showing a (3, H, W) array as an RGB uint8 image.

    Args:
        x: normalised (3, H, W) array (NumPy or anything ``np.asarray`` takes).
        mean: the mean used to normalise.
        std: the standard deviation used to normalise.

    Returns:
        uint8 (H, W, 3) RGB, clipped to [0, 255].
    """
    img = (np.asarray(x).transpose(1, 2, 0) * std + mean) * 255
    return np.clip(img, 0, 255).astype(np.uint8)


def train_transform(size, scales=(0.75, 1.5), ignore_index=255):
    """The course's default training augmentation: scale, crop (pad with ignore), flip.

    Args:
        size: crop size, int or (height, width).
        scales: (min, max) of the random scale factor.
        ignore_index: label value of the crop's padding.

    Returns:
        Compose of ``RandomScale``, ``RandomCrop`` and ``RandomFlip``.
    """
    return Compose([RandomScale(scales), RandomCrop(size, ignore_index), RandomFlip()])
