"""Day 1 helpers: the erode/dilate widget callback (04_metrics) and the small viz additions."""
import numpy as np
import pytest

from common import viz
from common.data import LABEL_DIVISOR
from common.course.widgets import erode_dilate_demo, erode_dilate_scores, morph_mask


def _disc(size=40, r=8, cx=20, cy=20):
    yy, xx = np.mgrid[0:size, 0:size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_morph_mask_grows_and_shrinks_by_whole_pixels():
    sq = np.zeros((20, 20), bool)
    sq[8:12, 8:12] = True                                     # 4x4 square
    assert morph_mask(sq, 0).sum() == 16 and morph_mask(sq, 0) is not sq
    assert morph_mask(sq, 1).sum() == 36                       # 6x6 with a 3x3 square element
    assert morph_mask(sq, 2).sum() == 64
    assert morph_mask(sq, -1).sum() == 4                       # 2x2 left
    assert morph_mask(sq, -2).sum() == 0
    # Erosion also eats from the image edge (border counts as background).
    full = np.ones((5, 5), bool)
    assert morph_mask(full, -1).sum() == 9


def test_scores_match_hand_counts():
    label = _disc()
    s = erode_dilate_scores(label, label, 0)
    assert s["iou_object"] == 1.0 and s["pixel_acc"] == 1.0 and s["miou"] == 1.0
    grown = erode_dilate_scores(label, label, 2)
    mask = grown["mask"]
    tp, fp = (mask & label).sum(), (mask & ~label).sum()
    assert fp > 0 and tp == label.sum()
    assert grown["iou_object"] == pytest.approx(tp / mask.sum())
    assert grown["pixel_acc"] == pytest.approx(1 - fp / label.size)
    bg_iou = (label.size - mask.sum()) / (label.size - label.sum())
    assert grown["miou"] == pytest.approx((grown["iou_object"] + bg_iou) / 2)


def test_iou_falls_faster_than_pixel_accuracy():
    label = _disc()
    ious, accs = zip(*[(s["iou_object"], s["pixel_acc"])
                       for s in (erode_dilate_scores(label, label, k) for k in range(-5, 6))])
    assert ious[:5] == tuple(sorted(ious[:5])) and ious[5:] == tuple(sorted(ious[5:], reverse=True))
    # Every step away from the truth costs IoU more than pixel accuracy (the object is small).
    assert all(i < a for i, a, k in zip(ious, accs, range(-5, 6)) if k) and min(ious) < 0.3


def test_eroded_to_nothing_gives_iou_zero():
    label = _disc(r=3)
    s = erode_dilate_scores(label, label, -5)
    assert s["mask"].sum() == 0 and s["iou_object"] == 0.0
    assert s["pixel_acc"] == pytest.approx(1 - label.mean())


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        erode_dilate_scores(np.zeros((4, 4), bool), np.zeros((4, 5), bool), 0)


def test_demo_callback_without_drawing_returns_scores():
    label = _disc()
    image = np.full(label.shape + (3,), 128, np.uint8)
    s = erode_dilate_demo(label, label, -1, image=image, show=False)
    assert s["iou_object"] == erode_dilate_scores(label, label, -1)["iou_object"] < 1


def test_demo_callback_draws(capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    erode_dilate_demo(_disc(), _disc(), 1, show=True)
    assert "pixel accuracy" in capsys.readouterr().out
    plt.close("all")


def test_colorize_panoptic_separates_touching_instances_of_one_class():
    pan = np.full((8, 8), 1 * LABEL_DIVISOR, np.int64)                 # stuff class 1
    pan[2:6, 1:4] = 4 * LABEL_DIVISOR + 1
    pan[2:6, 4:7] = 4 * LABEL_DIVISOR + 2                          # touching, same class
    rgb = viz.colorize_panoptic(pan)
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == viz.palette()[1]).all()                # stuff keeps its class colour
    assert not (rgb[3, 2] == rgb[3, 5]).all()                  # two instances differ
    assert (rgb[3, 4] == 255).all()                            # the boundary between them is white


def test_mask_and_gray_to_rgb():
    m = np.array([[True, False]])
    assert viz.mask_to_rgb(m).tolist() == [[[255, 255, 255], [0, 0, 0]]]
    assert viz.mask_to_rgb(m, (9, 8, 7))[0, 0].tolist() == [9, 8, 7]
    g = viz.gray_to_rgb(np.array([[0.0, 0.5, 2.0]]), 0, 1)
    assert g.shape == (1, 3, 3) and g[0, :, 0].tolist() == [0, 127, 255]


# The two operators 03/04 write out by hand, checked against the library on random inputs.

def test_hand_confusion_matrix_matches_library():
    from common.metrics import confusion_matrix

    rng = np.random.default_rng(1)
    label, pred = rng.integers(0, 5, (7, 9)), rng.integers(0, 5, (7, 9))
    conf = np.zeros((5, 5), np.int64)
    np.add.at(conf, (label.ravel(), pred.ravel()), 1)
    assert np.array_equal(conf, confusion_matrix(pred, label, 5)) and conf.sum() == 63


def test_hand_cross_entropy_matches_paddle():
    import paddle

    from common.losses import cross_entropy

    rng = np.random.default_rng(2)
    logits = rng.normal(0, 3, (2, 4, 5, 7)).astype(np.float32)
    label = rng.integers(0, 4, (2, 5, 7))
    z = logits.astype(np.float64) - logits.max(1, keepdims=True)
    log_prob = z - np.log(np.exp(z).sum(1, keepdims=True))
    ours = -np.take_along_axis(log_prob, label[:, None], 1).mean()
    theirs = float(cross_entropy(paddle.to_tensor(logits), paddle.to_tensor(label)))
    assert abs(ours - theirs) < 1e-5
