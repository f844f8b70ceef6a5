"""The lesson checks' floors (``common.course.lesson``) against brute force and hand cases."""
import numpy as np
import pytest

from common.course.lesson import check_beats_floors, floors, instance_floors, panoptic_floors
from common.metrics import confusion_matrix, segmentation_scores


def test_floors_by_hand():
    # 3 classes with shares 1/2, 1/4, 1/4: majority IoU (1/2, 0, 0) -> mean 1/6;
    # random: f / (2 - f) = 1/3, 1/7, 1/7 -> mean (1/3 + 2/7) / 3
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 255])
    f = floors(labels, 3)
    assert f["majority"] == pytest.approx(1 / 6)
    assert f["random"] == pytest.approx((1 / 3 + 2 / 7) / 3)


def test_random_floor_is_the_mean_of_many_random_labellings():
    rng = np.random.default_rng(0)
    labels = rng.choice(5, size=(4, 40, 40), p=[0.5, 0.3, 0.1, 0.07, 0.03])
    share = np.bincount(labels.ravel(), minlength=6) / labels.size
    draws = [segmentation_scores(confusion_matrix(rng.choice(6, size=labels.shape, p=share), labels, 6))["miou"]
             for _ in range(200)]
    f = floors(labels, 6)            # class 5 absent from the labels and from the answers: left out
    assert f["random"] == pytest.approx(np.mean(draws), abs=2e-3)
    assert f["majority"] == pytest.approx(0.5 / 5, abs=0.01)


def test_all_ignored_is_refused():
    with pytest.raises(ValueError, match="ignore_index"):
        floors(np.full((3, 3), 255), 2)


def test_check_beats_floors(capsys):
    floor = dict(majority=0.04, random=0.08)
    assert check_beats_floors(0.5, 0.05, floor, 0.2) == pytest.approx(0.28)
    assert "required > 0.280" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not above"):
        check_beats_floors(0.25, 0.05, floor, 0.2)
    with pytest.raises(AssertionError, match="cannot fail"):
        check_beats_floors(0.5, 0.3, floor, 0.2)


def _target(semantic, masks, labels):
    return dict(semantic=semantic, masks=np.asarray(masks, bool), labels=np.asarray(labels, np.int64))


def test_instance_floors_by_hand():
    # class 0 (stuff) covers most pixels: the majority labeller finds no object, AP 0
    sem = np.zeros((8, 8), np.int64)
    sem[2:4, 2:4] = 1
    t = _target(sem, [sem == 1], [1])
    f = instance_floors([t, t], thing_ids=[1], num_classes=2)
    assert f["majority"] == 0.0 and 0.0 <= f["random"] < 0.1
    # a thing class everywhere, one object: the majority labeller's whole-image mask is that object
    whole = _target(np.ones((8, 8), np.int64), [np.ones((8, 8))], [1])
    assert instance_floors([whole], thing_ids=[1], num_classes=2)["majority"] == pytest.approx(1.0)


def test_panoptic_floors_by_hand():
    # stuff 0 on the left half, one thing (class 1, instance 1) on the right half, a void column
    pan = np.zeros((1, 6, 6), np.int64)
    pan[0, :, 3:] = 1 * 1000 + 1
    pan[0, :, 0] = 255 * 1000
    f = panoptic_floors(pan, thing_ids=[1], stuff_ids=[0], num_classes=2)
    # majority (thing class 1, 18 of 30 labelled pixels) paints one class-1 segment; void pixels leave
    # it, so it matches the thing with IoU 18/30 = 0.6 (things PQ 0.6) and misses the stuff (PQ 0)
    assert f["things_pq"]["majority"] == pytest.approx(0.6) and f["pq"]["majority"] == pytest.approx(0.3)
    assert 0.0 <= f["pq"]["random"] <= 1.0
