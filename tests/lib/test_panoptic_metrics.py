"""PQ and mask AP: hand-computed cases, void handling, pycocotools agreement."""
import numpy as np
import pytest

from common.data import LABEL_DIVISOR, VARIANTS, make_scene
from common.metrics import mask_ap, mask_ap_at, mask_iou, match_instances, panoptic_quality

THINGS, STUFF = VARIANTS["scenes"].thing_ids, VARIANTS["scenes"].stuff_ids


def test_perfect_prediction_is_one():
    s = make_scene(3, 48)
    r = panoptic_quality(s["panoptic"], s["panoptic"], THINGS, STUFF)
    assert r["pq"] == r["sq"] == r["rq"] == 1.0
    assert set(r["per_class"]) == set(np.unique(s["semantic"]).tolist())


def _hand_case():
    """10x10: sky (0) around two things A (4001) and B (4002) and a void corner (class 9)."""
    t = np.zeros((10, 10), np.int64)
    t[0:5, 0:5] = 4001
    t[5:10, 5:10] = 4002
    t[0:4, 8:10] = 9000                  # void: class 9 is neither thing nor stuff
    p = np.zeros((10, 10), np.int64)
    p[0:5, 0:4] = 4001                   # A found, IoU 20/25 = 0.8; B missed (FN)
    p[0:2, 6:10] = 4003                  # half on void, half on sky: still a FP
    p[2:4, 8:10] = 4004                  # entirely on void: not a FP
    return p, t


def test_hand_computed_pq_with_void_unmatched_and_stuff():
    p, t = _hand_case()
    r = panoptic_quality(p, t, THINGS, STUFF)
    assert r["counts"][4] == (1, 1, 1)
    np.testing.assert_allclose(r["per_class"][4], (0.8 * 0.5, 0.8, 0.5))
    # sky: 42 true pixels, 68 predicted, 38 shared, none of the predicted on void
    iou_sky = 38 / (42 + 68 - 38)
    np.testing.assert_allclose(r["per_class"][0], (iou_sky, iou_sky, 1.0))
    np.testing.assert_allclose(r["pq"], (0.4 + iou_sky) / 2)
    np.testing.assert_allclose(r["things"], (0.4, 0.8, 0.5))
    np.testing.assert_allclose(r["stuff"], (iou_sky, iou_sky, 1.0))
    assert 9 not in r["per_class"] and 5 not in r["per_class"]


def test_void_pixels_leave_the_union():
    t = np.array([[4001] * 10 + [9000] * 10])
    p = np.array([[4001] * 16 + [0] * 4])            # 6 predicted pixels on void
    r = panoptic_quality(p, t, THINGS, STUFF)
    assert r["per_class"][4] == (1.0, 1.0, 1.0)        # 10 / (10 + 16 - 10 - 6)
    assert 0 not in r["per_class"]                      # sky predicted only on void


def test_iou_at_most_half_is_no_match_and_stuff_ids_are_ignored():
    t = np.array([[1 * LABEL_DIVISOR] * 8 + [4 * LABEL_DIVISOR + 1] * 8])
    p = np.array([[1001] * 4 + [1002] * 4 + [4001] * 8])   # stuff instance ids 1, 2 merged
    r = panoptic_quality(p, t, THINGS, STUFF)
    assert r["per_class"][1] == (1.0, 1.0, 1.0)
    t2 = np.array([[4001] * 4 + [4002] * 4])
    p2 = np.array([[4001] * 8])                            # IoU exactly 0.5: not a match
    r2 = panoptic_quality(p2, t2, THINGS, STUFF)
    assert r2["counts"][4] == (0, 1, 2) and r2["pq"] == 0.0


def test_crowd_regions_are_neither_matched_nor_missed():
    """A crowd of class 4 (segment 4999): a prediction on it is not a FP, and nobody has
    to find it; without the crowd flag it is an ordinary object, matched here."""
    t = np.zeros((6, 10), np.int64)
    t[:, 0:4] = 4999                     # crowd region, 24 px
    t[:, 6:9] = 4001                     # a normal thing, 18 px
    p = np.zeros((6, 10), np.int64)
    p[:, 0:3] = 4005                     # 18 px, all on the crowd: not a FP
    p[:, 6:9] = 4001                     # exact match
    r = panoptic_quality(p, t, THINGS, STUFF, crowd=[4999])
    assert r["counts"][4] == (1, 0, 0) and r["per_class"][4] == (1.0, 1.0, 1.0)
    plain = panoptic_quality(p, t, THINGS, STUFF)
    assert plain["counts"][4] == (2, 0, 0)     # 18/24 = 0.75 IoU: a crowd matched as a thing
    p[:, 3:6] = 4006                     # 18 px, a third on the crowd: a FP even so
    assert panoptic_quality(p, t, THINGS, STUFF, crowd=[4999])["counts"][4] == (1, 1, 0)


def test_batch_accumulates_over_images_and_unlabelled_prediction():
    p, t = _hand_case()
    none = np.full_like(t, -1)                              # nothing predicted: all FN
    r = panoptic_quality(np.stack([p, none]), np.stack([t, t]), THINGS, STUFF)
    assert r["counts"][4] == (1, 1, 3) and r["counts"][0] == (1, 0, 1)
    with pytest.raises(ValueError, match="shape"):
        panoptic_quality(p[:5], t, THINGS, STUFF)


def test_mask_iou_and_greedy_matching():
    a = np.zeros((2, 4, 4), bool)
    a[0, :2], a[1, 2:] = True, True
    b = np.zeros((1, 4, 4), bool)
    b[0, :3] = True
    np.testing.assert_allclose(mask_iou(a, b), [[8 / 12], [4 / 16]])
    iou = np.array([[0.9, 0.6], [0.8, 0.1]])
    # the higher-scored row 1 takes column 0 first; row 0 falls back to column 1
    assert match_instances(iou, 0.5, scores=[0.3, 0.9]).tolist() == [1, 0]
    assert match_instances(iou, 0.7, scores=[0.3, 0.9]).tolist() == [-1, 0]


def _boxes_to_masks(boxes, size=20):
    m = np.zeros((len(boxes), size, size), bool)
    for k, (y0, x0, y1, x1) in enumerate(boxes):
        m[k, y0:y1, x0:x1] = True
    return m


def test_mask_ap_by_hand_equals_pycocotools():
    # 3 ground truths over 2 images; detections: 0.9 TP, 0.8 FP, 0.7 TP, one GT missed
    gts = [dict(masks=_boxes_to_masks([(0, 0, 5, 5), (10, 10, 15, 15)]), labels=np.array([1, 1])),
           dict(masks=_boxes_to_masks([(2, 2, 8, 8)]), labels=np.array([1]))]
    preds = [dict(masks=_boxes_to_masks([(0, 0, 5, 5), (15, 0, 20, 5)]), labels=np.array([1, 1]),
                  scores=np.array([0.9, 0.8])),
             dict(masks=_boxes_to_masks([(2, 2, 8, 7)]), labels=np.array([1]), scores=np.array([0.7]))]
    # precision (1, 1/2, 2/3) at recall (1/3, 1/3, 2/3); monotone -> 1 up to r=.33, 2/3 up to .66
    expected = (34 * 1 + 33 * 2 / 3) / 101
    assert mask_ap_at(preds, gts, 0.5, category=1) == pytest.approx(expected)
    assert mask_ap(preds, gts, iou_thresholds=[0.5])["ap"] == pytest.approx(expected)
    # at 0.9 the third detection (IoU 30/36) fails
    assert mask_ap_at(preds, gts, 0.9) == pytest.approx(34 / 101)


def test_mask_ap_on_noisy_scenes_matches_pycocotools_at_every_threshold():
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for i in range(5):
        s = make_scene(i, 48)
        gts.append(dict(masks=s["masks"], labels=s["labels"]))
        masks = np.stack([np.roll(m, rng.integers(-3, 4), axis=1) for m in s["masks"]])
        labels = np.where(rng.random(len(masks)) < 0.2, 4, s["labels"])
        preds.append(dict(masks=masks, labels=labels, scores=rng.random(len(masks))))
    r = mask_ap(preds, gts)
    ours = [mask_ap_at(preds, gts, t) for t in np.linspace(0.5, 0.95, 10)]
    assert r["ap"] == pytest.approx(np.mean(ours))
    assert r["ap50"] == pytest.approx(ours[0]) and r["ap75"] == pytest.approx(ours[5])
    assert 0 < r["ap"] < r["ap50"] <= 1


def test_mask_ap_without_detections_is_zero():
    s = make_scene(0, 32)
    empty = dict(masks=np.zeros((0, 32, 32), bool), labels=np.zeros(0, int), scores=np.zeros(0))
    assert mask_ap([empty], [dict(masks=s["masks"], labels=s["labels"])])["ap"] == 0.0
