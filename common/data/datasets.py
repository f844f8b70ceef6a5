"""Datasets for ``paddle.io.DataLoader``: the synthetic scenes, and a folder of real images.

An item is ``(image, label)``: float32 (3, H, W) normalised, int64 (H, W). The index may
be an int or ``(index, seed)``; with a seed, the random transform draws from
``np.random.default_rng([seed, index])`` (the trainer passes one per step, which makes a
resumed run see exactly the batches an uninterrupted one would).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import paddle

from .synthetic import get_variant, make_scenes
from .transforms import to_tensor_arrays

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class SegmentationDataset(paddle.io.Dataset):
    """Base: subclasses provide ``load(i) -> (image uint8 HxWx3, label HxW)`` and ``__len__``."""

    num_classes: int
    ignore_index: int = 255

    def __init__(self, transform=None):
        self.transform = transform

    def __getitem__(self, idx):
        i, seed = (idx if isinstance(idx, tuple) else (idx, None))
        image, label = self.load(int(i))
        if self.transform is not None:
            rng = np.random.default_rng([seed, int(i)] if seed is not None else None)
            image, label = self.transform(image, label, rng)
        return to_tensor_arrays(image, label)


class SyntheticScenes(SegmentationDataset):
    """``num_scenes`` synthetic scenes (see ``common.data.synthetic``), generated once.

    Use different ``seed`` values for train and validation: scenes never repeat across seeds.

    Args:
        num_scenes: number of scenes.
        image_size: side of the square scenes in pixels.
        seed: seed of the split (``make_scenes``).
        variant: synthetic variant (``common.data.VARIANTS``); sets ``classes``/``num_classes``.
        transform: optional joint transform ``t(image, label, rng)`` applied per item.
    """

    def __init__(self, num_scenes, image_size=96, seed=0, variant="scenes", transform=None):
        super().__init__(transform)
        var = get_variant(variant)
        self.classes = var.classes
        self.num_classes = var.num_classes
        self.images, self.labels = make_scenes(num_scenes, image_size, seed, variant)

    def __len__(self):
        return len(self.images)

    def load(self, i):
        return self.images[i], self.labels[i]


def synthetic_splits(budget, variant="scenes", train_transform=None, seed=0):
    """(train, val) synthetic datasets with the sizes of a ``runtime.budget()``.

    Args:
        budget: a ``runtime.Budget`` (``train_scenes``, ``val_scenes``, ``image_size``).
        variant: synthetic variant, e.g. ``'scenes'`` or ``'context'``.
        train_transform: joint transform of the training split (validation has none).
        seed: seed of the training scenes; validation uses ``seed + 10000``, so never the
            same scenes.

    Returns:
        (train, val): two ``SyntheticScenes``.
    """
    train = SyntheticScenes(budget.train_scenes, budget.image_size, seed, variant, train_transform)
    val = SyntheticScenes(budget.val_scenes, budget.image_size, seed + 10_000, variant)
    return train, val


_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


def _imread(path, kind):
    """``cv2.IMREAD_UNCHANGED`` decode of ``path``; errors name the file (``kind``: "image"
    or "label"). The bytes are decoded from memory: ``cv2.imdecode`` fails on a truncated
    JPEG or PNG, where ``cv2.imread`` lets libjpeg print a warning and fill the missing
    rows with grey (an interrupted download would then train on garbage)."""
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as err:              # missing, a folder, no permission
        raise ValueError(f"cannot read {kind} file {path} (missing, empty or not an image): "
                         f"{err.strerror or err}") from err
    if data.size == 0:
        raise ValueError(f"cannot read {kind} file {path}: it is empty (0 bytes)")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        fmt = next((f for magic, f in _MAGIC.items() if data[:len(magic)].tobytes() == magic), None)
        if fmt:
            raise ValueError(f"cannot read {kind} file {path}: truncated or corrupt {fmt} data "
                             f"({data.size} bytes; an interrupted download or copy?)")
        raise ValueError(f"cannot read {kind} file {path} (missing, empty or not an image)")
    return img


def read_image(path):
    """Read an RGB uint8 image, with a clear error naming the file.

    Grayscale images are replicated to three channels (common in medical data). RGBA is
    accepted only when fully opaque (alpha dropped); a transparent image is refused,
    because its alpha would be silently lost.
    """
    img = _imread(path, "image")     # ValueError naming the file: missing, empty, truncated
    if img.dtype != np.uint8:
        raise ValueError(f"{path}: expected 8-bit image, got {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        if (img[..., 3] != 255).any():
            raise ValueError(f"{path}: RGBA image with transparent pixels; flatten it onto a "
                             "background first (the alpha channel would be lost)")
        img = img[..., :3]
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _read_palette_indices(path):
    """The index plane of a palette ("P" mode) PNG, or None when ``path`` is not one.

    OpenCV expands a palette image into its colours, so PIL reads these: in the VOC
    format the palette index *is* the class id (255 = the ignored border).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(path)
    except (FileNotFoundError, UnidentifiedImageError, IsADirectoryError):
        return None                     # cv2 below gives the error naming the file
    except (OSError, SyntaxError) as err:   # PIL's errors for a truncated or corrupt header
        raise ValueError(f"cannot read label file {path}: {err}") from err
    with im:
        if im.mode != "P":
            return None
        try:
            return np.array(im, dtype=np.uint8)
        except OSError as err:          # truncated or corrupt data
            raise ValueError(f"cannot decode palette label file {path}: {err}") from err


def rgb_to_index(label_rgb, palette, ignore_color=None, ignore_index=255):
    """Convert a colour-coded label (H, W, 3) to class indices with ``palette``.

    Args:
        label_rgb: uint8 (H, W, 3) RGB label image.
        palette: (K, 3) RGB colour of each class; colour ``palette[k]`` becomes class ``k``.
        ignore_color: optional RGB colour mapped to ``ignore_index`` (e.g. VOC's
            (224, 224, 192) border).
        ignore_index: value given to ``ignore_color`` pixels.

    Returns:
        int64 (H, W) class indices.

    Raises:
        ValueError: a pixel has a colour that is neither in ``palette`` nor ``ignore_color``
            (the message lists the unknown colours), or the palette repeats a colour.
    """
    lab = np.asarray(label_rgb)
    if lab.ndim != 3 or lab.shape[2] != 3:
        raise ValueError(f"label_rgb must be (H, W, 3), got shape {lab.shape}")
    pal = np.asarray(palette, np.int64).reshape(-1, 3)

    def code(c):                                        # one int per colour
        return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]

    keys, values = code(pal), np.arange(len(pal), dtype=np.int64)
    if ignore_color is not None:
        keys = np.append(keys, code(np.asarray(ignore_color, np.int64)))
        values = np.append(values, ignore_index)
    if np.unique(keys).size != keys.size:
        raise ValueError("palette (with ignore_color) repeats a colour; classes would be ambiguous")
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    colours, inverse = np.unique(code(lab.astype(np.int64)), return_inverse=True)
    pos = np.minimum(np.searchsorted(keys, colours), len(keys) - 1)
    unknown = colours[keys[pos] != colours]
    if unknown.size:
        rgb = [((int(c) >> 16) & 255, (int(c) >> 8) & 255, int(c) & 255) for c in unknown[:10]]
        raise ValueError(f"label colours {rgb}{' ...' if unknown.size > 10 else ''} are not in "
                         f"the palette ({unknown.size} unknown colour(s))")
    return values[pos][inverse.reshape(lab.shape[:2])]


def read_label(path):
    """Read a label PNG as class indices (H, W).

    Accepts single-channel images (8 or 16 bit) and palette ("P" mode) PNGs such as VOC's,
    whose palette index is the class (255 stays 255, the ignored border). A true RGB
    colour-coded label is refused: convert it with ``rgb_to_index(label_rgb, palette)``.

    Args:
        path: the label file.

    Returns:
        (H, W) integer array of class indices.
    """
    lab = _read_palette_indices(path)
    if lab is not None:
        return lab
    lab = _imread(path, "label")     # ValueError naming the file: missing, empty, truncated
    if lab.ndim != 2:
        raise ValueError(f"{path}: a label must be single-channel class indices, "
                         f"got shape {lab.shape}; a colour-coded (RGB) label must be converted "
                         "first: read_image(path) then rgb_to_index(label_rgb, palette)")
    return lab


class LabelledFiles(SegmentationDataset):
    """Base of the datasets of image files with label files (``SegFolder`` and the real
    datasets of ``common.data.real``): a subclass fills ``self.pairs`` with (image path,
    label path) and sets ``num_classes`` / ``ignore_index``. ``load`` reads a pair, maps the
    label with ``convert_label`` and checks it: same height and width as the image, values
    in ``[0, num_classes)`` or ``ignore_index``. Errors name the offending file.
    """

    ignore_index = 255

    def __len__(self):
        return len(self.pairs)

    def convert_label(self, label):
        """The file's label values -> class indices (identity here; Cityscapes maps its
        label ids to train ids)."""
        return label

    def load(self, i):
        img_path, lab_path = self.pairs[i]
        image, label = read_image(img_path), self.convert_label(read_label(lab_path))
        self.check_label(label, image.shape[:2], i)
        return image, label

    def check_label(self, label, image_hw, i):
        """Raise naming pair ``i``'s files unless ``label`` (converted) is ``image_hw`` (H, W)
        and holds only classes ``[0, num_classes)`` or ``ignore_index``."""
        img_path, lab_path = self.pairs[i]
        if tuple(image_hw) != label.shape:
            raise ValueError(f"image {img_path} is {image_hw[1]}x{image_hw[0]} but label "
                             f"{lab_path} is {label.shape[1]}x{label.shape[0]} (width x height)")
        # negative values too (e.g. -1 in an int16 TIFF): Paddle's loss would fail later
        # without naming the file
        bad = np.unique(label[((label < 0) | (label >= self.num_classes)) & (label != self.ignore_index)])
        if bad.size:
            raise ValueError(f"{lab_path}: label values {bad[:10].tolist()} are outside "
                             f"[0, {self.num_classes}) and not ignore_index={self.ignore_index}")


class SegFolder(LabelledFiles):
    """Images in ``root/images`` and labels in ``root/labels`` with the same file stem.

    Every pair is checked on first load: same height and width, label values in
    ``[0, num_classes)`` or ``ignore_index``. Errors name the offending file.

    Args:
        root: folder holding ``images/`` and ``labels/``.
        num_classes: number of classes K; label values must be < K.
        ignore_index: label value of unlabelled pixels, not scored (255 as VOC's border).
        transform: optional joint transform ``t(image, label, rng)``.
    """

    def __init__(self, root, num_classes, ignore_index=255, transform=None):
        super().__init__(transform)
        root = Path(root)
        img_dir, lab_dir = root / "images", root / "labels"
        for d in (root, img_dir, lab_dir):
            if not d.is_dir():
                raise FileNotFoundError(f"dataset folder not found: {d} (expected "
                                        f"{root}/images and {root}/labels)")
        self.num_classes, self.ignore_index = num_classes, ignore_index
        labels = {p.stem: p for p in lab_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS}
        self.pairs = []
        for p in sorted(img_dir.iterdir()):
            if p.suffix.lower() not in IMAGE_EXTS:
                continue
            if p.stem not in labels:
                raise FileNotFoundError(f"no label for image {p} in {lab_dir}")
            self.pairs.append((p, labels[p.stem]))
        if not self.pairs:
            raise FileNotFoundError(f"no images in {img_dir}")
