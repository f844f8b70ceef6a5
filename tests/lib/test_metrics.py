"""Metrics against counts done by hand (see the conventions in common/metrics.py)."""
import math

import numpy as np
import pytest

from common.metrics import SegMetric, confusion_matrix, segmentation_scores

# 3 classes. Class 2 is never predicted; one pixel is ignored (255).
LABEL = np.array([[0, 0, 1, 1],
                  [0, 0, 1, 2],
                  [0, 255, 2, 2]])
PRED = np.array([[0, 1, 1, 1],
                 [0, 0, 1, 1],
                 [0, 0, 1, 1]])


def test_confusion_matrix_by_hand():
    conf = confusion_matrix(PRED, LABEL, 3)
    # gt 0: five pixels, 4 predicted 0, 1 predicted 1; gt 1: three, all 1; gt 2: three, all 1.
    assert conf.tolist() == [[4, 1, 0], [0, 3, 0], [0, 3, 0]]
    assert conf.dtype == np.int64 and conf.sum() == 11     # the ignored pixel is not counted


def test_scores_by_hand():
    s = segmentation_scores(confusion_matrix(PRED, LABEL, 3))
    np.testing.assert_allclose(s["iou"], [4 / 5, 3 / 7, 0.0])
    assert s["miou"] == pytest.approx((4 / 5 + 3 / 7 + 0) / 3)
    np.testing.assert_allclose(s["acc"], [4 / 5, 1.0, 0.0])
    assert s["macc"] == pytest.approx((0.8 + 1 + 0) / 3)
    assert s["pixel_acc"] == pytest.approx(7 / 11)
    np.testing.assert_allclose(s["dice"], [8 / 9, 6 / 10, 0.0])
    pe = (5 * 4 + 3 * 7 + 3 * 0) / 11 ** 2
    assert s["kappa"] == pytest.approx((7 / 11 - pe) / (1 - pe))


def test_absent_class_is_nan_not_one():
    label = np.zeros((4, 4), int)
    pred = np.zeros((4, 4), int)
    pred[0, 0] = 1
    s = segmentation_scores(confusion_matrix(pred, label, 3))
    assert math.isnan(s["iou"][2]) and math.isnan(s["acc"][2])   # absent everywhere
    assert s["iou"][1] == 0 and math.isnan(s["acc"][1])           # predicted, never labelled
    assert s["miou"] == pytest.approx((15 / 16 + 0) / 2)
    assert s["macc"] == pytest.approx(15 / 16)


def test_all_ignored_gives_nan_scores():
    s = segmentation_scores(confusion_matrix(np.zeros((2, 2)), np.full((2, 2), 255), 2))
    assert math.isnan(s["miou"]) and math.isnan(s["pixel_acc"])


def test_streaming_equals_whole_dataset():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (5, 7, 9))
    labels[labels == 3] = 255
    preds = rng.integers(0, 3, (5, 7, 9))
    m = SegMetric(3)
    for p, y in zip(preds, labels):
        m.update(p, y)
    whole = segmentation_scores(confusion_matrix(preds, labels, 3))
    assert m.compute()["miou"] == pytest.approx(whole["miou"])
    # Dataset mIoU sums counts first; it is not the mean of per-image mIoUs.
    per_image = np.mean([segmentation_scores(confusion_matrix(p, y, 3))["miou"] for p, y in zip(preds, labels)])
    assert per_image != pytest.approx(whole["miou"])


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="label values \\[5\\]"):
        confusion_matrix(np.zeros((2, 2)), np.array([[0, 5], [1, 1]]), 3)
    with pytest.raises(ValueError, match="pred values \\[-1\\]"):
        confusion_matrix(np.array([[0, -1], [0, 0]]), np.zeros((2, 2)), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)


def test_paddle_tensors_accepted():
    import paddle
    conf = confusion_matrix(paddle.to_tensor(PRED), paddle.to_tensor(LABEL), 3)
    assert conf.tolist() == [[4, 1, 0], [0, 3, 0], [0, 3, 0]]


def _halves(split, size=6):
    """(size, size) map: class 0 in columns < split, class 1 from there on."""
    m = np.zeros((size, size), np.int64)
    m[:, split:] = 1
    return m


def test_boundary_f_score_hand_computed():
    from common.metrics import boundary_f_score

    label = _halves(3)                   # true edge between columns 2 and 3
    pred = _halves(4)                    # predicted one column to the right ...
    pred[0, 0] = 1                       # ... plus a stray class-1 pixel in a corner
    # tolerance 0: no predicted boundary pixel lies on a true one of its class
    s0 = boundary_f_score(pred, label, 2, tolerance=0)
    assert s0["f"] == 0 and np.all(s0["per_class"] == 0)
    s1 = boundary_f_score(pred, label, 2, tolerance=1)
    # class 1: predicted boundary = column 4 (6 px, each 1 px from column 3) + (0, 0) (3 px
    # away): P = 6/7, R = 6/6. class 0: column 3 (6, matched) + (0, 1) (1 px from (0, 2):
    # matched) + (1, 0) (2 px from (1, 2): not): P = 7/8, R = 1.
    np.testing.assert_allclose(s1["precision"], [7 / 8, 6 / 7])
    np.testing.assert_allclose(s1["recall"], [1, 1])
    np.testing.assert_allclose(s1["per_class"], [14 / 15, 12 / 13])
    assert s1["f"] == pytest.approx((14 / 15 + 12 / 13) / 2)
    # a batch sums the counts of its images; the perfect copy adds 6 matched pixels per class
    sb = boundary_f_score(np.stack([pred, label]), np.stack([label, label]), 2, tolerance=1)
    np.testing.assert_allclose(sb["precision"], [13 / 14, 12 / 13])
    assert boundary_f_score(label, label, 2)["f"] == 1.0


def test_boundary_f_score_ignore_border_and_absent_classes():
    from common.metrics import boundary_f_score

    label = np.zeros((5, 5), np.int64)
    label[:, 4] = 255                              # an ignored column
    pred = np.zeros((5, 5), np.int64)
    pred[:, 4] = 1                                 # wrong there, but ignored: no boundary
    s = boundary_f_score(pred, label, 3)
    assert np.isnan(s["f"]) and np.all(np.isnan(s["per_class"]))   # no boundary anywhere
    pred[:, 3] = 1                                 # a predicted edge the label does not have
    s = boundary_f_score(pred, label, 3)
    np.testing.assert_array_equal(s["per_class"][:2], [0, 0])
    assert np.isnan(s["per_class"][2]) and s["f"] == 0
    assert np.isnan(s["recall"][0]) and s["precision"][0] == 0
    with pytest.raises(ValueError, match="tolerance"):
        boundary_f_score(pred, label, 3, tolerance=-1)
    with pytest.raises(ValueError, match="outside"):
        boundary_f_score(pred + 5, label, 3)
