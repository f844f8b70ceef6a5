"""Datasets by name, for the command-line tools (``python -m common.train`` / ``common.evaluate``).

- ``open_dataset(kind, root, split, ...)``: one of ``LAYOUTS`` (a folder of your own, a
  PaddleSeg file list, PASCAL VOC, Cityscapes, COCO panoptic as semantic categories); a
  missing folder or list raises naming the path and the layout that was expected.
- ``survey(dataset)``: reads every label once (and every image's header) before a long run
  starts, so that a label of the wrong size, a value outside the classes or an unreadable
  file stops the run at once, naming the file, instead of hours into it. It returns the
  image sizes and the labelled pixels of each class.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..labels import LABEL_DIVISOR
from ..labels import palette as course_palette
from ..layouts import FIXED_CLASSES, LAYOUTS
from .datasets import LabelledFiles, SegFolder, read_image, read_label
from .real import CityscapesSegmentation, COCOPanoptic, FileListDataset, VOCSegmentation

class COCOPanopticSemantic(COCOPanoptic):
    """COCO panoptic read as semantic segmentation: the category (0..132) of each pixel,
    void and crowd pixels 255 (``PANOPTIC_VOID // LABEL_DIVISOR``)."""

    palette = course_palette(256)

    def load(self, i):
        image, pan = super().load(i)
        return image, (pan // LABEL_DIVISOR).astype(np.uint8)


def _list_file(root, split):
    """The file list of ``split``: ``root/<split>_list.txt``, or ``root/<split>`` when the
    split names a file (``my_train.txt``)."""
    named = root / split
    return named if named.suffix == ".txt" else root / f"{split}_list.txt"


def open_dataset(kind, root, split, num_classes=None, class_names=None, ignore_index=255,
                 transform=None):
    """The dataset ``kind`` (a key of ``LAYOUTS``) under ``root``, split ``split``.

    Args:
        kind: ``folder``, ``filelist``, ``voc``, ``cityscapes`` or ``coco-panoptic``.
        root: the dataset folder (see ``LAYOUTS``).
        split: ``train``, ``val``, ... (VOC: a list of ``ImageSets/Segmentation``, e.g.
            ``train_aug``; folder: the sub-folder; filelist: ``<split>_list.txt`` or a file).
        num_classes: K; required for ``folder`` / ``filelist``, checked for the others.
        class_names: optional K names (``folder`` / ``filelist``).
        ignore_index: label value of unlabelled pixels (``folder`` / ``filelist``; the
            public datasets use 255).
        transform: joint transform of the items (``train_transform(crop)`` for training).

    Returns:
        The dataset, with ``num_classes``, ``classes``, ``ignore_index`` and ``palette``.

    Raises:
        ValueError: an unknown kind, a missing or contradicting class count.
        FileNotFoundError: the layout is not there; the message names the path and the
            layout expected.
    """
    if kind not in LAYOUTS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose one of {sorted(LAYOUTS)}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a folder (expected for {kind}: {LAYOUTS[kind]})")
    if kind in FIXED_CLASSES:
        if class_names is not None:
            raise ValueError(f"{kind} has its own class names; class names are for folder/filelist")
    elif num_classes is None:
        raise ValueError(f"a {kind} dataset needs the number of classes (num_classes)")
    try:
        if kind == "voc":
            ds = VOCSegmentation(root, split, transform)
        elif kind == "cityscapes":
            ds = CityscapesSegmentation(root, split, transform)
        elif kind == "coco-panoptic":
            ds = COCOPanopticSemantic(root, split, transform)
        elif kind == "folder":
            ds = SegFolder(root / split, num_classes, ignore_index, transform)
        else:
            ds = FileListDataset(_list_file(root, split), root, num_classes, transform,
                                 ignore_index=ignore_index)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{kind} dataset, split {split!r}: {err}. Expected: {LAYOUTS[kind]}") from err
    if kind in FIXED_CLASSES:
        if num_classes is not None and num_classes != ds.num_classes:
            raise ValueError(f"num_classes={num_classes}, but {kind} has {ds.num_classes} classes")
        return ds
    if class_names is not None:
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
        if len(set(class_names)) != len(class_names):
            raise ValueError(f"class names repeat: {sorted({c for c in class_names if class_names.count(c) > 1})}")
        ds.classes = tuple(class_names)
    elif not getattr(ds, "classes", None):
        ds.classes = tuple(map(str, range(num_classes)))
    ds.palette = course_palette(256)
    return ds


@dataclass
class Survey:
    """What ``survey`` found: ``sizes`` (n, 2) image height and width; ``class_pixels``
    (K,) labelled pixels of each class (None when labels were not read); ``ignored``
    pixels labelled ``ignore_index``."""

    sizes: np.ndarray
    class_pixels: np.ndarray | None
    ignored: int

    def absent(self):
        """Classes no pixel of the dataset is labelled with."""
        return [] if self.class_pixels is None else np.flatnonzero(self.class_pixels == 0).tolist()


def _image_size(path):
    """(H, W) from the image header; a file PIL cannot open is read in full, so the error
    is ``read_image``'s (naming the file, telling a truncated file from a missing one)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
        return h, w
    except (OSError, UnidentifiedImageError, SyntaxError):
        return read_image(path).shape[:2]


def survey(dataset, threads=8, progress=False, desc="checking"):
    """Check every item of ``dataset`` without decoding its images, and count its classes.

    A ``LabelledFiles`` dataset (folder, file list, VOC, Cityscapes) has each label read and
    checked against its image's header (``LabelledFiles.check_label``: same height and
    width, values in ``[0, num_classes)`` or ``ignore_index``). Other datasets with
    ``pairs`` (COCO panoptic, whose labels are made from its json) have their image headers
    read; any other dataset is loaded item by item.

    Args:
        dataset: the dataset.
        threads: files read in parallel (decoding releases the GIL).
        progress: show a ``tqdm`` bar. desc: its label.

    Returns:
        ``Survey``.

    Raises:
        ValueError: the first bad item in dataset order, naming its file.
    """
    from tqdm.auto import tqdm

    k, ignore = dataset.num_classes, dataset.ignore_index
    labelled = isinstance(dataset, LabelledFiles)
    pairs = getattr(dataset, "pairs", None)

    def one(i):
        if labelled:
            img_path, lab_path = pairs[i]
            label = np.asarray(dataset.convert_label(read_label(lab_path)))
            hw = _image_size(img_path)
            dataset.check_label(label, hw, i)
            valid = label[label != ignore].astype(np.int64).ravel()
            return hw, np.bincount(valid, minlength=k), label.size - valid.size
        if pairs is not None:
            return _image_size(pairs[i][0]), None, 0
        image, label = dataset.load(i)
        return image.shape[:2], None, 0

    sizes, counts, ignored = [], np.zeros(k, np.int64), 0
    pool = ThreadPoolExecutor(max(1, threads))
    try:
        for hw, c, ign in tqdm(pool.map(one, range(len(dataset))), total=len(dataset),
                               desc=desc, disable=not progress, leave=False):
            sizes.append(hw)
            if c is not None:
                counts += c
            ignored += ign
    finally:
        pool.shutdown(cancel_futures=True)      # a bad file stops the survey at once
    return Survey(np.array(sizes, np.int64).reshape(-1, 2), counts if labelled else None, int(ignored))
