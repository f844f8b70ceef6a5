"""common.data.catalog: every dataset kind of the command-line tools opens from its layout,
and survey() counts the classes and names the first bad file, before any training."""
import cv2
import numpy as np
import pytest

from common.data import LABEL_DIVISOR
from common.data.catalog import LAYOUTS, open_dataset, survey
from test_real_data import make_coco_panoptic, write_rgb


def test_coco_panoptic_as_semantic_categories(tmp_path):
    pan = make_coco_panoptic(tmp_path)
    ds = open_dataset("coco-panoptic", tmp_path, "val")
    assert ds.num_classes == 3 and ds.classes == ("person", "car", "tree-merged")
    image, label = ds.load(0)
    np.testing.assert_array_equal(label, np.where(pan == 255 * LABEL_DIVISOR, 255, pan // LABEL_DIVISOR))
    assert label.dtype == np.uint8 and image.shape[:2] == label.shape
    s = survey(ds)
    assert s.sizes.tolist() == [[6, 8]] and s.class_pixels is None       # labels made from the json
    with pytest.raises(ValueError, match="num_classes=133, but coco-panoptic has 3 classes"):
        open_dataset("coco-panoptic", tmp_path, "val", num_classes=133)


def test_cityscapes_and_file_lists(tmp_path):
    ids = np.array([[7, 8, 26], [0, 26, 33]], np.uint8)                   # road, sidewalk, car, -, car, bicycle
    write_rgb(tmp_path / "cs/leftImg8bit/val/ulm/ulm_1_leftImg8bit.png", 2, 3)
    (tmp_path / "cs/gtFine/val/ulm").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "cs/gtFine/val/ulm/ulm_1_gtFine_labelIds.png"), ids)
    s = survey(open_dataset("cityscapes", tmp_path / "cs", "val"))
    assert s.class_pixels[[0, 1, 13, 18]].tolist() == [1, 1, 2, 1] and s.ignored == 1
    assert 2 in s.absent() and len(s.absent()) == 15

    root = tmp_path / "ai_studio"
    write_rgb(root / "img/a.jpg", 4, 5)
    (root / "ann").mkdir()
    cv2.imwrite(str(root / "ann/a.png"), np.full((4, 5), 2, np.uint8))
    for name in ("train_list.txt", "mine.txt"):
        (root / name).write_text("img/a.jpg ann/a.png\n")
    for split in ("train", "mine.txt"):
        ds = open_dataset("filelist", root, split, num_classes=3, class_names=("bg", "x", "y"))
        assert len(ds) == 1 and ds.classes == ("bg", "x", "y")
    assert survey(ds).class_pixels.tolist() == [0, 0, 20]
    with pytest.raises(ValueError, match=r"class names repeat: \['x'\]"):
        open_dataset("filelist", root, "train", num_classes=3, class_names=("x", "x", "y"))
    with pytest.raises(ValueError, match=r"ann/a\.png: label values \[2\] are outside \[0, 2\)"):
        survey(open_dataset("filelist", root, "train", num_classes=2))
    with pytest.raises(FileNotFoundError, match=r"val_list\.txt.*Expected: ROOT/<split>_list\.txt"):
        open_dataset("filelist", root, "val", num_classes=3)


def test_survey_names_the_first_bad_pair_in_order(tmp_path):
    (tmp_path / "train/labels").mkdir(parents=True)
    for i in range(5):
        write_rgb(tmp_path / "train/images" / f"{i}.png", 6, 7)
        h = 5 if i in (2, 4) else 6                                        # labels 2 and 4 too short
        cv2.imwrite(str(tmp_path / "train/labels" / f"{i}.png"), np.zeros((h, 7), np.uint8))
    ds = open_dataset("folder", tmp_path, "train", num_classes=2)
    with pytest.raises(ValueError, match=r"images/2\.png is 7x6 but label .*labels/2\.png is 7x5"):
        survey(ds, threads=3)
    (tmp_path / "train/labels/2.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"labels/2\.png: it is empty"):
        survey(ds)
    with pytest.raises(FileNotFoundError, match=r"folder dataset, split 'val'.*Expected: ROOT/<split>/images/"):
        open_dataset("folder", tmp_path, "val", num_classes=2)
    with pytest.raises(ValueError, match="unknown dataset kind 'voc2012'"):
        open_dataset("voc2012", tmp_path, "train")
    assert set(LAYOUTS) == {"folder", "filelist", "voc", "cityscapes", "coco-panoptic"}


def test_coco_panoptic_trains_from_the_command_line(tmp_path):
    from common import train

    make_coco_panoptic(tmp_path / "coco")
    trainer = train.main(["--dataset", "coco-panoptic", "--root", str(tmp_path / "coco"), "--train-split", "val",
                          "--model", "tiny", "--model-args", "width=4", "depth=2", "--crop-size", "4",
                          "--iters", "2", "--batch-size", "2", "--workers", "0", "--out", str(tmp_path / "run")])
    assert trainer.it == 2 and trainer.num_classes == 3
    assert (tmp_path / "run" / "final_model" / "config.json").is_file()
