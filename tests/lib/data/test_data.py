"""Synthetic data: consistency of annotations, determinism, transforms, and bad input."""
import cv2
import numpy as np
import pytest

from common.data import (BOAT, CAR, LABEL_DIVISOR, ROAD, VARIANTS, WATER, Compose, RandomCrop, RandomFlip,
                         RandomScale, SegFolder,
                         SyntheticScenes, get_variant, make_clip, make_scene, read_image)


@pytest.mark.parametrize("variant", ["scenes", "context"])
def test_scene_annotations_agree(variant):
    for seed in range(6):
        s = make_scene(seed, (70, 91), variant)
        var = get_variant(variant)
        assert s["image"].shape == (70, 91, 3) and s["image"].dtype == np.uint8
        assert s["semantic"].max() < var.num_classes
        # every thing pixel belongs to an instance and vice versa
        thing = np.isin(s["semantic"], var.thing_ids)
        assert np.array_equal(thing, s["instance"] > 0)
        assert np.array_equal(s["panoptic"], s["semantic"].astype(np.int32) * LABEL_DIVISOR + s["instance"])
        n = len(s["labels"])
        assert s["masks"].shape == (n, 70, 91) and n == s["instance"].max()
        for m, lab, box in zip(s["masks"], s["labels"], s["boxes"]):
            assert m.any() and (s["semantic"][m] == lab).all()
            ys, xs = np.nonzero(m)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_context_class_follows_surface():
    """A boat sits on water and a car on road: the pixels just below a hull tell its class."""
    for seed in range(10):
        s = make_scene(seed, 96, "context")
        for m, lab in zip(s["masks"], s["labels"]):
            ring = (cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
                    & ~np.isin(s["semantic"], (BOAT, CAR)))
            surface = np.bincount(s["semantic"][ring], minlength=4)
            assert surface.argmax() == (WATER if lab == BOAT else ROAD)


def test_deterministic_and_disjoint_seeds():
    a, b = SyntheticScenes(3, 48, seed=1), SyntheticScenes(3, 48, seed=1)
    c = SyntheticScenes(3, 48, seed=2)
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)


def test_clip_keeps_ids():
    clip = make_clip(0, num_frames=6, size=48, num_things=3)
    assert clip["frames"].shape == (6, 48, 48, 3)
    for k, cls in clip["labels"].items():
        for t in range(6):
            m = clip["instance"][t] == k
            assert (clip["semantic"][t][m] == cls).all()


def test_transforms_keep_labels_aligned():
    """After scale/crop/flip every label pixel still sits on its own colour in the image."""
    img = np.zeros((40, 50, 3), np.uint8)
    lab = np.zeros((40, 50), np.uint8)
    img[10:30, 5:25] = 200
    lab[10:30, 5:25] = 1
    t = Compose([RandomScale((0.5, 2.0)), RandomCrop(32, ignore_index=255), RandomFlip()])
    for seed in range(20):
        i2, l2 = t(img, lab, np.random.default_rng(seed))
        assert i2.shape[:2] == l2.shape == (32, 32)
        inside = l2 == 1
        # The nearest source pixel weighs >= 1/4 in the bilinear image (1/2 per axis), so a
        # label-1 pixel is at least 50 and a label-0 pixel at most 150; a label shifted
        # by a pixel (cv2.INTER_NEAREST's grid) breaks this.
        assert (i2[inside] >= 50).all() and (i2[l2 == 0] <= 150).all()
        assert set(np.unique(l2)) <= {0, 1, 255}
        assert (i2[l2 == 255] == 0).all()           # padding: image 0, label ignore


def test_dataset_items_and_seeded_augmentation():
    from common.data import train_transform
    ds = SyntheticScenes(4, 48, transform=train_transform(40))
    x, y = ds[(2, 7)]
    x2, y2 = ds[(2, 7)]
    assert x.shape == (3, 40, 40) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def _write(path, arr):
    assert cv2.imwrite(str(path), arr)


def _folder(tmp_path, image, label):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    _write(tmp_path / "images" / "a.png", image)
    _write(tmp_path / "labels" / "a.png", label)
    return tmp_path


def test_folder_reads_good_pair(tmp_path):
    ds = SegFolder(_folder(tmp_path, np.full((8, 9, 3), 50, np.uint8), np.ones((8, 9), np.uint8)), 3)
    x, y = ds[0]
    assert x.shape == (3, 8, 9) and (y == 1).all()


def test_folder_size_mismatch_names_files(tmp_path):
    ds = SegFolder(_folder(tmp_path, np.zeros((8, 9, 3), np.uint8), np.zeros((8, 8), np.uint8)), 3)
    with pytest.raises(ValueError, match=r"a\.png is 9x8 but label .*a\.png is 8x8"):
        ds[0]


def test_folder_label_out_of_range(tmp_path):
    lab = np.zeros((8, 9), np.uint8)
    lab[0, 0], lab[0, 1] = 7, 255
    ds = SegFolder(_folder(tmp_path, np.zeros((8, 9, 3), np.uint8), lab), 3)
    with pytest.raises(ValueError, match=r"labels.a\.png: label values \[7\]"):
        ds[0]


def test_grayscale_is_converted_and_rgba_checked(tmp_path):
    _write(tmp_path / "g.png", np.full((5, 6), 90, np.uint8))
    assert read_image(tmp_path / "g.png").shape == (5, 6, 3)
    rgba = np.full((5, 6, 4), 255, np.uint8)
    _write(tmp_path / "opaque.png", rgba)
    assert read_image(tmp_path / "opaque.png").shape == (5, 6, 3)
    rgba[0, 0, 3] = 0
    _write(tmp_path / "clear.png", rgba)
    with pytest.raises(ValueError, match="clear.png: RGBA image with transparent"):
        read_image(tmp_path / "clear.png")


def test_unreadable_and_missing(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image file .*bad.png"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError, match="dataset folder not found: .*nowhere"):
        SegFolder(tmp_path / "nowhere", 3)


def test_class_id_constants_name_the_classes():
    """The named class ids index each variant's class list (code uses them, not 4 or 2)."""
    from common.data import DISC, GRASS, SKY, SQUARE, TRIANGLE
    scenes, context = VARIANTS["scenes"].classes, VARIANTS["context"].classes
    ids = (SKY, GRASS, WATER, ROAD, DISC, SQUARE, TRIANGLE)
    assert [scenes[i] for i in ids] == ["sky", "grass", "water", "road", "disc", "square", "triangle"]
    assert (context[BOAT], context[CAR], context[WATER]) == ("boat", "car", "water")
