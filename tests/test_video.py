"""Video: J and F on hand cases, flow propagation, VIS linking through crossings."""
import numpy as np
import pytest

from common.data import make_clip
from common.video import (boundary_f_measure, id_switches, j_and_f, link_instances, noisy_instances,
                          propagate_masks, region_similarity, track_map)


def _square(y, x, s=10, size=32):
    m = np.zeros((size, size), bool)
    m[y:y + s, x:x + s] = True
    return m


def test_region_similarity_and_boundary_f():
    a, b = _square(5, 5), _square(5, 10)
    assert region_similarity(a, a) == 1.0 and region_similarity(a, _square(20, 20, 5)) == 0.0
    assert region_similarity(a, b) == pytest.approx(50 / 150)
    assert region_similarity(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
    assert boundary_f_measure(a, a) == 1.0
    # one pixel off: inside a 1-pixel tolerance F is perfect, at 0 pixels it is not
    shifted = _square(6, 5)
    assert boundary_f_measure(a, shifted, bound_th=1) == 1.0
    assert boundary_f_measure(a, b, bound_th=1) < 0.7
    assert boundary_f_measure(a, np.zeros_like(a)) == 0.0


def test_j_and_f_skips_the_given_first_frame():
    gt = np.stack([_square(5, 5).astype(int)] * 3)
    pred = gt.copy()
    pred[0] = 0                      # frame 0 is given in VOS, so it does not count
    r = j_and_f(pred, gt)
    assert r["J"] == 1.0 and r["F"] == 1.0 and r["per_object"] == {1: (1.0, 1.0)}
    pred[2] = 0
    assert j_and_f(pred, gt)["J"] == pytest.approx(0.5)


def test_flow_propagation_follows_a_moving_object():
    clip = make_clip(4, 6, 64, num_things=2)
    still = propagate_masks(np.repeat(clip["frames"][:1], 4, 0), clip["instance"][0])
    assert (still == clip["instance"][0]).all()           # no motion: the mask stays
    moving = propagate_masks(clip["frames"], clip["instance"][0])
    held = np.repeat(clip["instance"][:1], len(clip["frames"]), 0)    # never updating the mask
    assert j_and_f(moving, clip["instance"])["J"] > j_and_f(held, clip["instance"])["J"] + 0.1


def test_linking_keeps_ids_through_a_crossing():
    clip = make_clip(1, 10, 64, num_things=3)
    areas = np.array([[(f == i).sum() for i in (1, 2, 3)] for f in clip["instance"]])
    assert (areas.min(0) < 0.6 * areas.max(0)).any()      # someone is partly hidden: a crossing
    det = noisy_instances(clip["instance"], clip["labels"], seed=1, jitter=1)
    ids = link_instances(det)
    switches, matched = id_switches(det, ids, clip["instance"])
    assert switches == 0 and matched > 0.9
    ids_static = link_instances(det, motion=False)          # no motion model: ids jump
    assert id_switches(det, ids_static, clip["instance"])[0] > 0
    maps = track_map(det, ids, clip["instance"].shape[1:])
    assert len(np.unique(maps)) == 4                        # 3 tracks + background


def test_hungarian_and_greedy_assignments_differ_on_a_crafted_case():
    """Masks on one row of 12 pixels, blocks P = 0-5, Q = 6-8, R = 9-11. Tracks T0 = P+Q,
    T1 = R; detections D0 = P+R, D1 = Q. IoU: T0-D0 0.5, T0-D1 1/3, T1-D0 1/3, T1-D1 0.
    Greedy takes the best pair T0-D0 and leaves D1 nothing (new id 3); the Hungarian
    assignment maximises the total IoU (2/3 > 1/2): D0 -> T1, D1 -> T0."""
    row = lambda *spans: np.isin(np.arange(12), np.concatenate([np.arange(a, b) for a, b in spans]))[None]  # noqa: E731
    det = [dict(masks=np.stack([row((0, 9)), row((9, 12))]), labels=np.array([1, 1])),
           dict(masks=np.stack([row((0, 6), (9, 12)), row((6, 9))]), labels=np.array([1, 1]))]
    assert link_instances(det, motion=False, method="hungarian")[1].tolist() == [2, 1]
    assert link_instances(det, motion=False, method="greedy")[1].tolist() == [1, 3]
