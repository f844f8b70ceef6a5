"""Real dataset formats: each test writes tiny files in the exact format, reads them back."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from common.data import (LABEL_DIVISOR, CityscapesSegmentation, COCOInstances, COCOPanoptic,
                         FileListDataset, SyntheticScenes, VOCSegmentation, read_label,
                         rgb_to_index, train_transform, voc_palette)
from common.data.instances import collate_instances

RNG = np.random.default_rng(0)


def write_rgb(path, h, w):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img[..., ::-1])
    return img


def write_palette_png(path, label):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(label.astype(np.uint8), mode="P")
    im.putpalette(voc_palette().ravel().tolist())
    im.save(path)


def check_item_like_synthetic(ds, i=0):
    ref_x, ref_y = SyntheticScenes(1, 32)[0]
    x, y = ds[i]
    assert x.dtype == ref_x.dtype and y.dtype == ref_y.dtype
    assert x.ndim == 3 and x.shape[0] == 3 and y.shape == x.shape[1:]


# ------------------------------------------------------------------ read_label
def test_read_label_palette_png_gives_indices(tmp_path):
    lab = RNG.integers(0, 21, (7, 9)).astype(np.uint8)
    lab[0, :] = 255                                            # VOC's border
    write_palette_png(tmp_path / "a.png", lab)
    # OpenCV would expand the palette into colours: the indices must come back
    assert cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED).ndim == 3
    np.testing.assert_array_equal(read_label(tmp_path / "a.png"), lab)


def test_read_label_grayscale_and_16bit(tmp_path):
    lab = RNG.integers(0, 300, (5, 6)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "a.png"), lab)
    np.testing.assert_array_equal(read_label(tmp_path / "a.png"), lab)


def test_read_label_refuses_rgb_label_naming_the_fix(tmp_path):
    write_rgb(tmp_path / "c.png", 4, 4)
    with pytest.raises(ValueError, match=r"c\.png.*rgb_to_index"):
        read_label(tmp_path / "c.png")


def test_read_label_truncated_palette_png_names_file(tmp_path):
    write_palette_png(tmp_path / "t.png", np.zeros((64, 64), np.uint8) + 3)
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises((ValueError, OSError), match="t.png"):
        read_label(tmp_path / "t.png")


def test_rgb_to_index():
    pal = voc_palette(21)
    lab = RNG.integers(0, 21, (6, 5))
    rgb = pal[lab]
    np.testing.assert_array_equal(rgb_to_index(rgb, pal), lab)
    rgb[2, 3] = (224, 224, 192)
    out = rgb_to_index(rgb, pal, ignore_color=(224, 224, 192))
    assert out[2, 3] == 255 and (out[rgb[..., 0] != 224] == lab[rgb[..., 0] != 224]).all()
    rgb[0, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"\(1, 2, 3\)"):
        rgb_to_index(rgb, pal, ignore_color=(224, 224, 192))


# ------------------------------------------------------------------------- VOC
def make_voc(root, ids=("2007_000032", "2007_000039"), split="train", aug=False):
    labels = {}
    for k, i in enumerate(ids):
        h, w = 10 + k, 13 + 2 * k
        write_rgb(root / "JPEGImages" / f"{i}.jpg", h, w)
        lab = RNG.integers(0, 21, (h, w)).astype(np.uint8)
        lab[:, 0] = 255
        if aug:
            (root / "SegmentationClassAug").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "SegmentationClassAug" / f"{i}.png"), lab)
        else:
            write_palette_png(root / "SegmentationClass" / f"{i}.png", lab)
        labels[i] = lab
    lst = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    lst.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"/JPEGImages/{i}.jpg /SegmentationClassAug/{i}.png" if aug else i for i in ids]
    lst.write_text("\n".join(lines) + "\n")
    return labels


def test_voc_segmentation(tmp_path):
    labels = make_voc(tmp_path)
    ds = VOCSegmentation(tmp_path, "train")
    assert len(ds) == 2 and ds.num_classes == 21 and len(ds.classes) == 21
    assert ds.classes[15] == "person" and ds.ignore_index == 255
    for k, i in enumerate(labels):
        image, label = ds.load(k)
        assert image.dtype == np.uint8 and image.shape == labels[i].shape + (3,)
        np.testing.assert_array_equal(label, labels[i])
    check_item_like_synthetic(ds)
    ds.transform = train_transform(8)
    x, y = ds[(1, 7)]
    assert x.shape == (3, 8, 8) and set(np.unique(y)) <= set(range(21)) | {255}


def test_voc_aug_split(tmp_path):
    labels = make_voc(tmp_path, split="train_aug", aug=True)
    ds = VOCSegmentation(tmp_path, "train_aug")
    np.testing.assert_array_equal(ds.load(1)[1], labels["2007_000039"])


def test_voc_errors_name_the_file(tmp_path):
    make_voc(tmp_path)
    with pytest.raises(FileNotFoundError, match="val.txt"):
        VOCSegmentation(tmp_path, "val")
    (tmp_path / "JPEGImages" / "2007_000039.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"2007_000039\.jpg.*train\.txt"):
        VOCSegmentation(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="SegmentationClassAug"):
        VOCSegmentation(tmp_path, "train_aug")


def test_voc_out_of_range_label_names_file(tmp_path):
    make_voc(tmp_path)
    write_palette_png(tmp_path / "SegmentationClass" / "2007_000032.png",
                      np.full((10, 13), 30, np.uint8))
    with pytest.raises(ValueError, match=r"2007_000032\.png.*\[30\]"):
        VOCSegmentation(tmp_path).load(0)


# ------------------------------------------------------------------ Cityscapes
def test_cityscapes_maps_label_ids_to_train_ids(tmp_path):
    ids = np.array([[7, 8, 26, 33, 0, 1], [34, 6, 23, 24, 31, 3]], np.uint8)
    want = np.array([[0, 1, 13, 18, 255, 255], [255, 255, 10, 11, 16, 255]])
    for city, name in (("aachen", "aachen_000000_000019"), ("bochum", "bochum_000000_000313")):
        write_rgb(tmp_path / "leftImg8bit/train" / city / f"{name}_leftImg8bit.png", 2, 6)
        p = tmp_path / "gtFine/train" / city / f"{name}_gtFine_labelIds.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), ids)
    ds = CityscapesSegmentation(tmp_path, "train")
    assert len(ds) == 2 and ds.num_classes == 19 and ds.classes[13] == "car"
    assert tuple(ds.palette[0]) == (128, 64, 128)
    np.testing.assert_array_equal(ds.load(1)[1], want)
    check_item_like_synthetic(ds)
    (tmp_path / "gtFine/train/bochum/bochum_000000_000313_gtFine_labelIds.png").unlink()
    with pytest.raises(FileNotFoundError, match="bochum_000000_000313_gtFine_labelIds.png"):
        CityscapesSegmentation(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="leftImg8bit/val"):
        CityscapesSegmentation(tmp_path, "val")


# -------------------------------------------------------------- PaddleSeg lists
def test_file_list_dataset(tmp_path):
    lab = RNG.integers(0, 2, (9, 11)).astype(np.uint8)
    write_rgb(tmp_path / "JPEGImages/N0001.jpg", 9, 11)
    (tmp_path / "Annotations").mkdir()
    cv2.imwrite(str(tmp_path / "Annotations/N0001.png"), lab)
    (tmp_path / "train_list.txt").write_text("JPEGImages/N0001.jpg Annotations/N0001.png\n\n")
    ds = FileListDataset(tmp_path / "train_list.txt", tmp_path, num_classes=2)
    assert len(ds) == 1 and ds.classes == ("0", "1")
    np.testing.assert_array_equal(ds.load(0)[1], lab)
    check_item_like_synthetic(ds)
    (tmp_path / "bad.txt").write_text("JPEGImages/N0001.jpg Annotations/N0001.png\nonly_one.jpg\n")
    with pytest.raises(ValueError, match="bad.txt line 2"):
        FileListDataset(tmp_path / "bad.txt", tmp_path, 2)
    (tmp_path / "missing.txt").write_text("JPEGImages/N0002.jpg Annotations/N0001.png\n")
    with pytest.raises(FileNotFoundError, match=r"N0002\.jpg.*missing\.txt"):
        FileListDataset(tmp_path / "missing.txt", tmp_path, 2)
    with pytest.raises(ValueError, match=r"N0001\.png.*\[1\]"):
        FileListDataset(tmp_path / "train_list.txt", tmp_path, num_classes=1).load(0)


# ------------------------------------------------------------------------ COCO
CATS = [{"id": 1, "name": "person", "isthing": 1, "supercategory": "person"},
        {"id": 3, "name": "car", "isthing": 1, "supercategory": "vehicle"},
        {"id": 184, "name": "tree-merged", "isthing": 0, "supercategory": "plant"}]


def make_coco_panoptic(root, h=6, w=8):
    ann_dir = root / "annotations"
    (ann_dir / "panoptic_val2017").mkdir(parents=True)
    write_rgb(root / "val2017/000000000139.jpg", h, w)
    seg = np.zeros((h, w), np.int64)                   # 0 = unlabelled
    ids = {"p1": 3226956, "p2": 6979964, "car": 2, "tree": 2885377,
           "crowd": 9000000}
    seg[0:2, 0:3] = ids["p1"]
    seg[3:6, 5:8] = ids["p2"]
    seg[2:4, 0:2] = ids["car"]
    seg[4:6, 0:4] = ids["tree"]
    seg[0:2, 6:8] = ids["crowd"]
    png = np.stack([seg % 256, seg // 256 % 256, seg // 65536], -1).astype(np.uint8)
    Image.fromarray(png).save(ann_dir / "panoptic_val2017/000000000139.png")
    segments = [dict(id=ids["p1"], category_id=1, iscrowd=0), dict(id=ids["tree"], category_id=184, iscrowd=0),
                dict(id=ids["car"], category_id=3, iscrowd=0), dict(id=ids["p2"], category_id=1, iscrowd=0),
                dict(id=ids["crowd"], category_id=1, iscrowd=1)]
    data = dict(images=[dict(id=139, file_name="000000000139.jpg", height=h, width=w)],
                annotations=[dict(image_id=139, file_name="000000000139.png", segments_info=segments)],
                categories=CATS)
    (ann_dir / "panoptic_val2017.json").write_text(json.dumps(data))
    V = 255 * LABEL_DIVISOR
    want = np.full((h, w), V, np.int64)
    want[0:2, 0:3] = 0 * LABEL_DIVISOR + 1            # person, first thing
    want[2:4, 0:2] = 1 * LABEL_DIVISOR + 2            # car, second thing (segments_info order)
    want[3:6, 5:8] = 0 * LABEL_DIVISOR + 3
    want[4:6, 0:4] = 2 * LABEL_DIVISOR                # stuff: instance 0
    return want


def test_coco_panoptic(tmp_path):
    want = make_coco_panoptic(tmp_path)
    ds = COCOPanoptic(tmp_path, "val")
    assert ds.classes == ("person", "car", "tree-merged") and ds.category_ids == (1, 3, 184)
    assert ds.thing_ids == (0, 1) and ds.stuff_ids == (2,) and ds.num_classes == 3
    image, pan = ds.load(0)
    assert image.shape == (6, 8, 3)
    np.testing.assert_array_equal(pan, want)
    x, y = ds[0]
    assert x.shape == (3, 6, 8) and y.dtype == np.int64
    t = ds.target(0)
    np.testing.assert_array_equal(t["labels"], [0, 1, 0])
    np.testing.assert_array_equal(t["boxes"], [[0, 0, 3, 2], [0, 2, 2, 4], [5, 3, 8, 6]])
    assert t["masks"].shape == (3, 6, 8) and t["masks"][2].sum() == 9
    assert t["semantic"][0, 7] == 255 and t["semantic"][5, 0] == 2


def test_coco_panoptic_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="panoptic_val2017.json"):
        COCOPanoptic(tmp_path, "val")
    make_coco_panoptic(tmp_path)
    p = tmp_path / "annotations/panoptic_val2017.json"
    data = json.loads(p.read_text())
    data["annotations"][0]["segments_info"].pop(0)      # p1's pixels are now unexplained
    p.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"000000000139\.png.*3226956"):
        COCOPanoptic(tmp_path, "val").load(0)
    (tmp_path / "val2017/000000000139.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"000000000139\.jpg"):
        COCOPanoptic(tmp_path, "val")


def test_coco_instances(tmp_path):
    from pycocotools import mask as mask_util

    h, w = 7, 9
    write_rgb(tmp_path / "val2017/000000000001.jpg", h, w)
    write_rgb(tmp_path / "val2017/000000000002.jpg", 4, 4)          # no annotations
    masks = np.zeros((3, h, w), np.uint8)
    masks[0, 1:4, 2:5] = 1
    masks[1, 3:7, 0:2] = 1
    masks[2, 0:2, 6:9] = 1                                          # a crowd region

    def rle(m):
        r = mask_util.encode(np.asfortranarray(m))
        return dict(size=r["size"], counts=r["counts"].decode())
    anns = [dict(id=k + 1, image_id=1, category_id=c, iscrowd=int(k == 2), segmentation=rle(m),
                 area=int(m.sum()), bbox=[0, 0, 1, 1]) for k, (m, c) in enumerate(zip(masks, (3, 1, 1)))]
    data = dict(images=[dict(id=1, file_name="000000000001.jpg", height=h, width=w),
                        dict(id=2, file_name="000000000002.jpg", height=4, width=4)],
                annotations=anns, categories=[dict(id=1, name="person"), dict(id=3, name="car")])
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/instances_val2017.json").write_text(json.dumps(data))
    ds = COCOInstances(tmp_path, "val")
    assert len(ds) == 1 and ds.classes == ("person", "car") and ds.thing_ids == (0, 1)
    x, t = ds[0]
    assert x.shape == (3, h, w) and set(t) == {"boxes", "labels", "masks", "semantic", "panoptic"}
    np.testing.assert_array_equal(t["labels"], [1, 0])
    np.testing.assert_array_equal(t["masks"], masks[:2].astype(bool))
    np.testing.assert_array_equal(t["boxes"], [[2, 1, 5, 4], [0, 3, 2, 7]])
    assert t["semantic"][0, 7] == 255 and t["semantic"][0, 0] == 255 and t["semantic"][2, 3] == 1
    assert t["boxes"].dtype == np.float32 and t["labels"].dtype == np.int64
    images, targets = collate_instances([ds[0], ds[0]])
    assert images.shape == (2, 3, h, w) and len(targets) == 2
    assert len(COCOInstances(tmp_path, "val", keep_empty=True)) == 2
    (tmp_path / "val2017/000000000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"000000000001\.jpg.*instances_val2017\.json"):
        COCOInstances(tmp_path, "val")


def test_real_dataset_trains_with_trainer_and_metrics(tmp_path):
    from common.engine import Trainer
    from common.inference import evaluate
    from common.models import build_model

    make_voc(tmp_path)
    train = VOCSegmentation(tmp_path, "train", transform=train_transform(8))
    model = build_model("tiny", train.num_classes, width=4, depth=2)
    trainer = Trainer(model, train, iters=2, batch_size=2, progress=False)
    trainer.fit()
    assert len(trainer.history["loss"]) == 2 and np.isfinite(trainer.history["loss"]).all()
    scores = evaluate(model, VOCSegmentation(tmp_path, "train"), 21, batch_size=1)
    assert 0 <= scores["miou"] <= 1


def test_file_list_needs_num_classes(tmp_path):
    (tmp_path / "l.txt").write_text("a b\n")
    with pytest.raises(ValueError, match="num_classes"):
        FileListDataset(tmp_path / "l.txt", tmp_path)
