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
