"""Real datasets in their standard formats: PASCAL VOC, Cityscapes, COCO panoptic and
instances, and PaddleSeg's file lists.

They give the items of the synthetic datasets, so the same transforms, ``Trainer`` and
metrics work unchanged:

- ``VOCSegmentation``, ``CityscapesSegmentation``, ``FileListDataset``: ``(image, label)``
  like ``SyntheticScenes`` (they are ``LabelledFiles``, the base of ``SegFolder``, so a
  pair is read and checked in one place: same size, values in range, errors name the file).
- ``COCOPanoptic``: ``(image, panoptic)`` like ``PanopticScenes`` (``category *
  LABEL_DIVISOR + instance``, categories renumbered 0..132); ``target(i)`` gives the dict of
  ``SceneInstances``.
- ``COCOInstances``: ``(image, target)`` like ``SceneInstances`` (use ``collate_instances``).

Every class has ``num_classes``, ``classes``, ``ignore_index`` and ``load(i) -> (uint8
(H, W, 3) RGB, int (H, W) label)``. Pixels without a class (VOC's border, Cityscapes'
unused ids, COCO's unlabelled and crowd regions) are ``ignore_index`` = 255; in a panoptic
map they are ``255 * LABEL_DIVISOR``, a category in neither ``thing_ids`` nor ``stuff_ids``,
which ``panoptic_quality`` treats as void.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..labels import voc_palette
from .datasets import LabelledFiles, SegmentationDataset, read_image
from .synthetic import LABEL_DIVISOR
from .transforms import to_tensor_arrays

IGNORE = 255


def _require(path, what):
    """``path`` if it exists, else FileNotFoundError naming it and what it should be."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _check_pairs(pairs, source):
    """Raise naming the first missing file of ``pairs`` and the list it came from."""
    for img, lab in pairs:
        for p in (img, lab):
            if not p.is_file():
                raise FileNotFoundError(f"{p} (listed in {source}) does not exist")


# ------------------------------------------------------------------------- VOC
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")


class VOCSegmentation(LabelledFiles):
    """PASCAL VOC 2012 segmentation: ``root`` is ``VOCdevkit/VOC2012``.

    ``split`` names ``root/ImageSets/Segmentation/<split>.txt`` (``train``, ``val``,
    ``trainval``); images are ``JPEGImages/<id>.jpg`` and labels ``SegmentationClass/<id>.png``
    (palette PNGs: index = class, 255 = the ignored object border). A split ending in
    ``aug`` (``train_aug``, the 10,582 images of SBD + VOC) reads its labels from
    ``SegmentationClassAug/`` (grayscale PNGs), the usual layout of the augmented set.
    A list line may be an id or ``/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png``.

    Args:
        root: the ``VOCdevkit/VOC2012`` folder.
        split: name of the list in ``ImageSets/Segmentation`` (``train``, ``val``, ...).
        transform: optional joint transform ``t(image, label, rng)``.
    """

    classes = VOC_CLASSES
    num_classes = 21
    palette = voc_palette(256)

    def __init__(self, root, split="train", transform=None):
        super().__init__(transform)
        root = Path(root)
        list_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
        lab_dir = root / ("SegmentationClassAug" if split.endswith("aug") else "SegmentationClass")
        for d in (root / "JPEGImages", lab_dir):
            if not d.is_dir():
                raise FileNotFoundError(
                    f"VOC folder not found: {d} (root must be VOCdevkit/VOC2012"
                    + (", with SegmentationClassAug/ from SBD for an aug split" if
                       split.endswith("aug") else "") + ")")
        if not list_file.is_file():
            raise FileNotFoundError(f"VOC split list not found: {list_file} (split={split!r})")
        ids = [Path(line.split()[0]).stem for line in list_file.read_text().splitlines()
               if line.strip()]
        if not ids:
            raise ValueError(f"{list_file} lists no images")
        self.pairs = [(root / "JPEGImages" / f"{i}.jpg", lab_dir / f"{i}.png") for i in ids]
        _check_pairs(self.pairs, list_file)


# ------------------------------------------------------------------ Cityscapes
# The official table (cityscapesScripts labels.py): (label id, train id, name, colour) of
# the 19 evaluated classes; every other label id maps to 255.
_CITYSCAPES = (
    (7, 0, "road", (128, 64, 128)), (8, 1, "sidewalk", (244, 35, 232)),
    (11, 2, "building", (70, 70, 70)), (12, 3, "wall", (102, 102, 156)),
    (13, 4, "fence", (190, 153, 153)), (17, 5, "pole", (153, 153, 153)),
    (19, 6, "traffic light", (250, 170, 30)), (20, 7, "traffic sign", (220, 220, 0)),
    (21, 8, "vegetation", (107, 142, 35)), (22, 9, "terrain", (152, 251, 152)),
    (23, 10, "sky", (70, 130, 180)), (24, 11, "person", (220, 20, 60)),
    (25, 12, "rider", (255, 0, 0)), (26, 13, "car", (0, 0, 142)),
    (27, 14, "truck", (0, 0, 70)), (28, 15, "bus", (0, 60, 100)),
    (31, 16, "train", (0, 80, 100)), (32, 17, "motorcycle", (0, 0, 230)),
    (33, 18, "bicycle", (119, 11, 32)))
CITYSCAPES_CLASSES = tuple(name for _, _, name, _ in _CITYSCAPES)
CITYSCAPES_PALETTE = np.array([rgb for *_, rgb in _CITYSCAPES], np.uint8)
CITYSCAPES_ID_TO_TRAIN = np.full(65536, IGNORE, np.uint8)      # lookup for 8- and 16-bit PNGs
CITYSCAPES_ID_TO_TRAIN[[i for i, *_ in _CITYSCAPES]] = [t for _, t, *_ in _CITYSCAPES]


class CityscapesSegmentation(LabelledFiles):
    """Cityscapes fine annotations: ``root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png``
    with ``root/gtFine/<split>/<city>/<name>_gtFine_labelIds.png``; label ids become the
    19 train ids of the benchmark (``CITYSCAPES_ID_TO_TRAIN``), the others 255.

    Args:
        root: the Cityscapes folder (holding ``leftImg8bit/`` and ``gtFine/``).
        split: ``train``, ``val`` or ``test``.
        transform: optional joint transform ``t(image, label, rng)``.
    """

    classes = CITYSCAPES_CLASSES
    num_classes = 19
    palette = CITYSCAPES_PALETTE

    def __init__(self, root, split="train", transform=None):
        super().__init__(transform)
        root = Path(root)
        img_dir, lab_dir = root / "leftImg8bit" / split, root / "gtFine" / split
        for d in (img_dir, lab_dir):
            if not d.is_dir():
                raise FileNotFoundError(f"Cityscapes folder not found: {d} (expected "
                                        f"{root}/leftImg8bit/{split} and {root}/gtFine/{split})")
        self.pairs = []
        for img in sorted(img_dir.glob("*/*_leftImg8bit.png")):
            stem = img.name[: -len("_leftImg8bit.png")]
            self.pairs.append((img, lab_dir / img.parent.name / f"{stem}_gtFine_labelIds.png"))
        if not self.pairs:
            raise FileNotFoundError(f"no *_leftImg8bit.png images in {img_dir}/<city>/")
        _check_pairs(self.pairs, img_dir)

    def convert_label(self, label):
        return CITYSCAPES_ID_TO_TRAIN[label]


# -------------------------------------------------------------- PaddleSeg lists
class FileListDataset(LabelledFiles):
    """PaddleSeg's file lists: each line ``image_path label_path`` relative to ``root``
    (``train_list.txt`` of an AI Studio dataset). ``classes`` defaults to "0", "1", ...

    Args:
        list_file: the list.
        root: folder the paths are relative to (default: the list's folder).
        num_classes: number of classes (required).
        transform: optional joint transform ``t(image, label, rng)``.
        classes: optional class names.
        ignore_index: label value not scored (255).
        separator: between the two paths (default: any whitespace).
    """

    def __init__(self, list_file, root=None, num_classes=None, transform=None, classes=None,
                 ignore_index=IGNORE, separator=None):
        super().__init__(transform)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        list_file = _require(list_file, "file list")
        root = Path(root) if root is not None else list_file.parent
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.classes = tuple(classes) if classes is not None else tuple(map(str, range(num_classes)))
        if len(self.classes) != num_classes:
            raise ValueError(f"{len(self.classes)} class names for num_classes={num_classes}")
        self.pairs = []
        for n, line in enumerate(list_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.strip().split(separator)
            if len(parts) != 2:
                raise ValueError(f"{list_file} line {n}: expected 'image_path label_path', "
                                 f"got {line.strip()!r}")
            self.pairs.append((root / parts[0].strip(), root / parts[1].strip()))
        if not self.pairs:
            raise ValueError(f"{list_file} lists no images")
        _check_pairs(self.pairs, list_file)


# ------------------------------------------------------------------------ COCO
def rgb_to_panoptic_id(png):
    """COCO panoptic PNG (H, W, 3) RGB -> segment ids R + 256 G + 256^2 B (int64)."""
    png = np.asarray(png, np.int64)
    return png[..., 0] + 256 * png[..., 1] + 65536 * png[..., 2]


def instance_target(panoptic, thing_ids, label_divisor=LABEL_DIVISOR):
    """The target dict of ``SceneInstances`` from one panoptic map.

    Returns ``boxes`` (n, 4) float32 x0, y0, x1, y1 of each thing's pixels (x1, y1
    exclusive), ``labels`` (n,) int64 category, ``masks`` (n, H, W) bool, ``semantic``
    (H, W) int64 (void -> 255) and ``panoptic`` (H, W) int64; things in instance-number order.
    """
    pan = np.asarray(panoptic, np.int64)
    cat = pan // label_divisor
    ids = np.unique(pan)
    ids = ids[np.isin(ids // label_divisor, thing_ids) & (ids % label_divisor > 0)]
    ids = ids[np.lexsort((ids // label_divisor, ids % label_divisor))]   # by instance number
    masks = pan[None] == ids[:, None, None]
    boxes = np.zeros((len(ids), 4), np.float32)
    if len(ids):
        rows, cols = masks.any(2), masks.any(1)             # (n, H), (n, W)
        h, w = pan.shape
        boxes[:, 0] = cols.argmax(1)
        boxes[:, 2] = w - cols[:, ::-1].argmax(1)
        boxes[:, 1] = rows.argmax(1)
        boxes[:, 3] = h - rows[:, ::-1].argmax(1)
    return dict(boxes=boxes, labels=(ids // label_divisor).astype(np.int64), masks=masks,
                semantic=cat, panoptic=pan)


class COCOPanoptic(SegmentationDataset):
    """COCO panoptic segmentation: ``root/annotations/panoptic_<split>2017.json`` (or the
    json directly in ``root``), its PNGs in ``panoptic_<split>2017/`` beside the json and
    the images in ``root/<split>2017/``.

    An item is ``(image, panoptic)`` as in ``PanopticScenes``: ``category * LABEL_DIVISOR
    + instance`` with categories renumbered 0..K-1 in id order (``category_ids`` holds
    COCO's ids) and things numbered 1..n per image, stuff instance 0. Unlabelled (id 0) and
    crowd pixels are void (``255 * LABEL_DIVISOR``). ``target(i)`` is the dict of
    ``SceneInstances`` for the instance models.
    """

    ignore_index = IGNORE

    def __init__(self, root, split="val", transform=None):
        super().__init__(transform)
        root = Path(root)
        name = f"panoptic_{split}2017"
        candidates = [root / "annotations" / f"{name}.json", root / f"{name}.json"]
        json_path = next((p for p in candidates if p.is_file()), None)
        if json_path is None:
            raise FileNotFoundError(f"COCO panoptic annotations not found: "
                                    f"{' or '.join(map(str, candidates))}")
        self.png_dir = _require(json_path.parent / name, "COCO panoptic PNG folder")
        self.img_dir = _require(root / f"{split}2017", "COCO image folder")
        try:
            data = json.loads(json_path.read_text())
        except ValueError as err:
            raise ValueError(f"{json_path}: not valid JSON ({err})") from err
        for key in ("annotations", "categories", "images"):
            if key not in data:
                raise ValueError(f"{json_path}: no {key!r} entry; is it a panoptic json?")
        cats = sorted(data["categories"], key=lambda c: c["id"])
        self.category_ids = tuple(c["id"] for c in cats)
        self.classes = tuple(c["name"] for c in cats)
        self.num_classes = len(cats)
        self.thing_ids = tuple(k for k, c in enumerate(cats) if c.get("isthing", 0))
        self.stuff_ids = tuple(k for k, c in enumerate(cats) if not c.get("isthing", 0))
        self.label_divisor = LABEL_DIVISOR
        self._contiguous = {c: k for k, c in enumerate(self.category_ids)}
        files = {im["id"]: im["file_name"] for im in data["images"]}
        self.annotations = sorted(data["annotations"], key=lambda a: a["file_name"])
        self.pairs = [(self.img_dir / files.get(a["image_id"], Path(a["file_name"]).with_suffix(".jpg").name),
                       self.png_dir / a["file_name"]) for a in self.annotations]
        self.json_path = json_path
        _check_pairs(self.pairs, json_path)

    def __len__(self):
        return len(self.annotations)

    def load(self, i):
        img_path, png_path = self.pairs[i]
        image = read_image(img_path)
        ids = rgb_to_panoptic_id(read_image(png_path))
        if image.shape[:2] != ids.shape:
            raise ValueError(f"image {img_path} is {image.shape[1]}x{image.shape[0]} but "
                             f"{png_path} is {ids.shape[1]}x{ids.shape[0]} (width x height)")
        segs = self.annotations[i]["segments_info"]
        seg_ids = np.array([s["id"] for s in segs], np.int64)
        known = set(seg_ids.tolist()) | {0}
        stray = np.setdiff1d(np.unique(ids), list(known))
        if stray.size:
            raise ValueError(f"{png_path}: segment ids {stray[:10].tolist()} are not in the "
                             f"segments_info of {self.json_path}")
        values, things = [], 0
        for s in segs:
            if s["category_id"] not in self._contiguous:
                raise ValueError(f"{self.json_path}: segment {s['id']} of {png_path.name} has "
                                 f"unknown category_id {s['category_id']}")
            k = self._contiguous[s["category_id"]]
            if s.get("iscrowd", 0):
                values.append(IGNORE * LABEL_DIVISOR)
            elif k in self.thing_ids:
                things += 1
                values.append(k * LABEL_DIVISOR + things)
            else:
                values.append(k * LABEL_DIVISOR)
        # segment id -> course value by a sorted lookup (ids go up to 256^3)
        keys = np.append(seg_ids, 0)
        vals = np.append(np.array(values, np.int64), IGNORE * LABEL_DIVISOR)
        order = np.argsort(keys)
        pan = vals[order][np.searchsorted(keys[order], ids)]
        return image, pan

    def target(self, i):
        """``instance_target`` of image ``i``: boxes, labels, masks, semantic, panoptic."""
        return instance_target(self.load(i)[1], self.thing_ids, self.label_divisor)


class COCOInstances(SegmentationDataset):
    """COCO instance segmentation through pycocotools, for Mask R-CNN and SOLO:
    ``root/annotations/instances_<split>2017.json`` and images in ``root/<split>2017/``.

    An item is ``(image, target)`` as in ``SceneInstances`` (batch with
    ``collate_instances``): categories renumbered 0..K-1 (``category_ids`` holds COCO's),
    all of them things (``thing_ids``); ``semantic`` is 255 where no object is (the
    instance annotations say nothing about stuff) and crowd regions are void in
    ``semantic``/``panoptic`` and dropped from the instances. Overlapping objects:
    the later annotation wins the pixel. Images without annotations are skipped unless
    ``keep_empty``.
    """

    ignore_index = IGNORE

    def __init__(self, root, split="val", keep_empty=False):
        super().__init__(None)
        from pycocotools.coco import COCO

        root = Path(root)
        self.json_path = _require(root / "annotations" / f"instances_{split}2017.json",
                                  "COCO instance annotations")
        self.img_dir = _require(root / f"{split}2017", "COCO image folder")
        try:
            self.coco = COCO(str(self.json_path))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{self.json_path}: not a COCO instances json ({err})") from err
        cats = self.coco.loadCats(sorted(self.coco.getCatIds()))
        self.category_ids = tuple(c["id"] for c in cats)
        self.classes = tuple(c["name"] for c in cats)
        self.num_classes = len(cats)
        self.thing_ids, self.stuff_ids = tuple(range(len(cats))), ()
        self.label_divisor = LABEL_DIVISOR
        self._contiguous = {c: k for k, c in enumerate(self.category_ids)}
        ids = sorted(self.coco.getImgIds())
        if not keep_empty:
            ids = [i for i in ids if self.coco.getAnnIds(imgIds=i)]
        self.image_ids = ids
        for i in ids:
            p = self.img_dir / self.coco.imgs[i]["file_name"]
            if not p.is_file():
                raise FileNotFoundError(f"{p} (listed in {self.json_path}) does not exist")

    def __len__(self):
        return len(self.image_ids)

    def load(self, i):
        """(image, panoptic map) of image ``i``; crowd and unannotated pixels void."""
        info = self.coco.imgs[self.image_ids[i]]
        path = self.img_dir / info["file_name"]
        image = read_image(path)
        h, w = image.shape[:2]
        if (info["height"], info["width"]) != (h, w):
            raise ValueError(f"image {path} is {w}x{h} but {self.json_path} says "
                             f"{info['width']}x{info['height']}")
        pan = np.full((h, w), IGNORE * LABEL_DIVISOR, np.int64)
        n = 0
        for ann in self.coco.loadAnns(self.coco.getAnnIds(imgIds=self.image_ids[i])):
            m = self.coco.annToMask(ann).astype(bool)
            if ann.get("iscrowd", 0):
                pan[m] = IGNORE * LABEL_DIVISOR
            else:
                n += 1
                pan[m] = self._contiguous[ann["category_id"]] * LABEL_DIVISOR + n
        return image, pan

    def __getitem__(self, idx):
        i = idx[0] if isinstance(idx, tuple) else idx
        image, pan = self.load(int(i))
        return to_tensor_arrays(image), instance_target(pan, self.thing_ids, self.label_divisor)
