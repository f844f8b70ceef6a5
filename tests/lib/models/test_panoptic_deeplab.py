"""Panoptic-DeepLab: targets (built in the data pipeline, void included), post-processing on a
hand-made case, forward/backward, learning."""
import numpy as np
import paddle
import pytest
from paddle.io.dataloader.collate import default_collate_fn

from common.data import LABEL_DIVISOR, PANOPTIC_VOID, VARIANTS
from common.data.panoptic import PanopticDeepLabTargets, PanopticScenes
from common.engine import Trainer
from common.metrics import panoptic_quality
from common.models import build_model
from common.models.panoptic_deeplab import (PanopticDeepLabLoss, find_instance_centers, group_pixels,
                                            merge_semantic_and_instance, panoptic_deeplab_targets,
                                            panoptic_from_outputs)

THINGS, STUFF = VARIANTS["scenes"].thing_ids, VARIANTS["scenes"].stuff_ids
SMALL = dict(thing_ids=THINGS, depth=18, width=8, channels=16, aspp_rates=(1, 2, 3), nms_kernel=3,
             stuff_area=8)


def _two_objects():
    """12x16: grass (1) with a square (class 5) on the left and a disc (class 4) on the right."""
    pan = np.full((12, 16), 1 * LABEL_DIVISOR, np.int64)
    pan[2:8, 1:7] = 5001
    pan[4:10, 9:15] = 4002
    return pan


def test_targets_point_every_thing_pixel_to_its_centre():
    pan = _two_objects()
    t = panoptic_deeplab_targets(pan, THINGS, sigma=2.0)
    yy, xx = np.mgrid[0:12, 0:16]
    for seg, (cy, cx) in ((5001, (4.5, 3.5)), (4002, (6.5, 11.5))):
        m = pan == seg
        np.testing.assert_allclose(yy[m] + t["offset"][0][m], cy)
        np.testing.assert_allclose(xx[m] + t["offset"][1][m], cx)
    assert t["center"].max() <= 1 and t["center"][4:6, 3:5].min() == pytest.approx(np.exp(-0.5 / 8))
    assert (t["offset"][:, pan == 1 * LABEL_DIVISOR] == 0).all() and t["offset_weight"].sum() == 72
    assert (t["semantic"] == pan // LABEL_DIVISOR).all()


def test_targets_mark_void_pixels():
    """Void (class 255 or a negative value): semantic ignore_index, no centre weight, no
    offset; a void hole in an instance does not move its centre of mass."""
    pan = _two_objects()
    pan[0, :] = 255 * LABEL_DIVISOR
    pan[11, :] = -1
    pan[5, 10] = -1                                        # a hole in the disc
    t = panoptic_deeplab_targets(pan, THINGS, sigma=2.0)
    void = (pan < 0) | (pan // LABEL_DIVISOR == 255)
    assert (t["semantic"][void] == 255).all() and (t["semantic"][~void] == (pan // LABEL_DIVISOR)[~void]).all()
    np.testing.assert_array_equal(t["center_weight"], ~void)
    np.testing.assert_array_equal(t["semantic_weight"], ~void)             # small-instance weight off
    assert t["offset_weight"][void].sum() == 0 and (t["offset"][:, void] == 0).all()
    m = pan == 4002
    yy, xx = np.mgrid[0:12, 0:16]
    np.testing.assert_allclose(yy[m] + t["offset"][0][m], yy[m].mean(), atol=1e-5)
    np.testing.assert_allclose(xx[m] + t["offset"][1][m], xx[m].mean(), atol=1e-5)


def test_small_instances_weigh_more_in_the_semantic_loss():
    """The paper's small-instance weight: pixels of instances below the area count
    ``small_instance_weight`` times in the cross-entropy (void still 0)."""
    pan = _two_objects()
    pan[5, 10] = -1                                        # the disc: 35 pixels, the square: 36
    t = panoptic_deeplab_targets(pan, THINGS, sigma=2.0, small_instance_area=36, small_instance_weight=3.0)
    expect = np.where(pan == 4002, 3.0, 1.0) * (pan >= 0)
    np.testing.assert_array_equal(t["semantic_weight"], expect)
    rng = np.random.default_rng(0)
    outs = {k: paddle.to_tensor(rng.normal(size=(1, c, 12, 16)).astype(np.float32))
            for k, c in (("semantic", 7), ("center", 1), ("offset", 2))}
    plain = PanopticDeepLabLoss(THINGS, sigma=2.0, top_k=1.0)
    weighted = PanopticDeepLabLoss(THINGS, sigma=2.0, top_k=1.0, small_instance_area=36)
    labelled = (pan >= 0).sum()
    a, b = float(plain.parts(outs, pan[None])["semantic"]), float(weighted.parts(outs, pan[None])["semantic"])
    logp = np.log(np.exp(outs["semantic"].numpy()[0]) / np.exp(outs["semantic"].numpy()[0]).sum(0))
    ce = -np.take_along_axis(logp, np.maximum(pan // LABEL_DIVISOR, 0)[None], 0)[0] * (pan >= 0)
    assert a == pytest.approx(ce.sum() / labelled, rel=1e-5)
    assert b == pytest.approx((ce * expect).sum() / labelled, rel=1e-5)


def test_targets_built_in_the_data_pipeline():
    """The dataset builds the targets per item after the flip; the DataLoader's collate stacks
    them; the loss on them equals the loss on the raw panoptic maps."""
    loss_fn = PanopticDeepLabLoss(THINGS, sigma=2.0)
    data = PanopticScenes(3, 40, seed=2, flip=True, targets=loss_fn.targets)
    raw = PanopticScenes(3, 40, seed=2, flip=True)
    flipped = False
    for i in range(3):
        for seed in range(4):                             # some of these seeds flip
            image, t = data[(i, seed)]
            image_raw, pan = raw[(i, seed)]
            np.testing.assert_array_equal(image, image_raw)
            expect = panoptic_deeplab_targets(pan, THINGS, sigma=2.0)
            assert set(t) == set(expect)
            for k in t:
                np.testing.assert_array_equal(t[k], expect[k])
            flipped |= not np.array_equal(pan, raw.load(i)[1])
    assert flipped
    batch = default_collate_fn([data[(i, 1)] for i in range(3)])      # what paddle.io.DataLoader does
    pans = np.stack([raw[(i, 1)][1] for i in range(3)])
    assert isinstance(batch[1], dict) and tuple(batch[1]["offset"].shape) == (3, 2, 40, 40)
    rng = np.random.default_rng(0)
    outs = {k: paddle.to_tensor(rng.normal(size=(3, c, 40, 40)).astype(np.float32))
            for k, c in (("semantic", 7), ("center", 1), ("offset", 2))}
    a, b = loss_fn.parts(outs, batch[1]), loss_fn.parts(outs, pans)
    for k in a:
        assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-6), k
    with pytest.raises(ValueError, match=r"lack \['center_weight'"):
        loss_fn(outs, {k: v for k, v in batch[1].items() if k != "center_weight"})
    assert "sigma=2.0" in repr(loss_fn.targets) and isinstance(loss_fn.targets, PanopticDeepLabTargets)


def test_void_through_the_pipeline_gets_no_gradient():
    """Targets of maps with void, collated as the DataLoader does: finite loss, no gradient on
    void pixels in any head, some gradient elsewhere."""
    h, w = 20, 24
    pan = np.full((2, h, w), 1 * LABEL_DIVISOR, np.int64)
    pan[:, 4:12, 5:14] = 4 * LABEL_DIVISOR + 1
    pan[0, 14:, :] = 255 * LABEL_DIVISOR
    pan[1, 6:9, 6:9] = -1
    loss_fn = PanopticDeepLabLoss(THINGS, sigma=2.0)
    batch = default_collate_fn([loss_fn.targets(p) for p in pan])
    rng = np.random.default_rng(0)
    outs = {k: paddle.to_tensor(rng.normal(size=(2, c, h, w)).astype(np.float32), stop_gradient=False)
            for k, c in (("semantic", 7), ("center", 1), ("offset", 2))}
    loss = loss_fn(outs, batch)
    assert np.isfinite(float(loss))
    loss.backward()
    void = ((pan < 0) | (pan // LABEL_DIVISOR == 255))[:, None]
    for k, out in outs.items():
        g = out.grad.numpy()
        assert np.abs(g[np.broadcast_to(void, g.shape)]).max() == 0, k
        assert np.abs(g[np.broadcast_to(~void, g.shape)]).max() > 0, k


def test_trainer_runs_on_pipeline_targets():
    loss_fn = PanopticDeepLabLoss(THINGS, sigma=2.0)
    data = PanopticScenes(4, 32, seed=0, flip=True, targets=loss_fn.targets)
    model = build_model("panoptic_deeplab", 7, **SMALL)
    hist = Trainer(model, data, None, num_classes=7, iters=2, batch_size=2, lr=1e-3, optimizer="adam",
                   loss_fn=loss_fn, progress=False).fit()
    assert len(hist["loss"]) == 2 and np.isfinite(hist["loss"]).all()


def test_post_processing_hand_made_case():
    """Two centres and exact offsets: grouping, majority vote and stuff give the expected map."""
    pan = _two_objects()
    t = panoptic_deeplab_targets(pan, THINGS, sigma=2.0)
    heat = np.zeros((12, 16), np.float32)
    heat[4, 3], heat[6, 11], heat[5, 4] = 0.9, 0.8, 0.5          # (5, 4) is not a local max
    centers = find_instance_centers(heat, threshold=0.1, nms_kernel=3)
    assert centers.tolist() == [[4, 3], [6, 11]]
    semantic = pan // LABEL_DIVISOR
    semantic[2, 1] = 4          # one mislabelled pixel: the majority vote keeps class 5
    out = panoptic_from_outputs(semantic, heat, t["offset"], THINGS, threshold=0.1, nms_kernel=3,
                                stuff_area=1)
    expected = np.where(pan == 5001, 5001, np.where(pan == 4002, 4002, 1 * LABEL_DIVISOR))
    np.testing.assert_array_equal(out, expected)
    # the same instance ids whatever the heatmap's order: ids follow the centres' scores
    inst = group_pixels(centers, t["offset"], np.isin(semantic, THINGS))
    assert set(np.unique(inst[pan == 5001])) == {1} and set(np.unique(inst[pan == 4002])) == {2}


def test_merge_stuff_area_threshold_and_no_centre():
    semantic = np.array([[0, 0, 0, 2], [1, 1, 1, 1]])
    instance = np.zeros_like(semantic)
    out = merge_semantic_and_instance(semantic, instance, THINGS, stuff_area=2)
    v = PANOPTIC_VOID
    np.testing.assert_array_equal(out, [[0, 0, 0, v], [1000] * 4])           # water: 1 px -> void
    sem = np.array([[4, 4], [5, 1]])
    out = merge_semantic_and_instance(sem, np.zeros_like(sem), THINGS, stuff_area=1)
    np.testing.assert_array_equal(out, [[v, v], [v, 1000]])                  # things without centre
    out = merge_semantic_and_instance(sem, np.zeros_like(sem), THINGS, stuff_area=1, label_divisor=100)
    np.testing.assert_array_equal(out, [[25500, 25500], [25500, 100]])      # category 255 whatever the divisor


def test_void_is_one_value_that_metrics_and_pictures_read():
    """Panoptic-DeepLab's void is UPSNet's and the datasets' (category 255): PQ does not judge
    it, the targets ignore it and viz.colorize_panoptic draws it in the ignore colour."""
    from common.models.upsnet import panoptic_from_logits
    from common.viz import IGNORE_COLOR, colorize_panoptic

    unknown_wins = paddle.to_tensor(np.array([0.0, 1.0], np.float32).reshape(2, 1, 1))
    assert panoptic_from_logits(unknown_wins, [], [1])[0, 0] == PANOPTIC_VOID     # UPSNet's void
    gt = np.array([[1000, 1000, 4001, 4001]])
    pred = merge_semantic_and_instance(np.array([[1, 1, 4, 4]]), np.array([[0, 0, 1, 0]]), THINGS,
                                       stuff_area=1)
    assert pred[0, 3] == PANOPTIC_VOID                                         # a thing pixel, no instance
    assert panoptic_quality(pred[None], gt[None], THINGS, [1])["per_class"][1][0] == 1.0
    assert (colorize_panoptic(pred)[0, 3] == IGNORE_COLOR).all()
    t = panoptic_deeplab_targets(np.where(gt == 4001, PANOPTIC_VOID, gt), THINGS, sigma=1)
    assert (t["semantic"] == [[1, 1, 255, 255]]).all() and t["center_weight"][0, 2:].sum() == 0


def test_find_centers_top_k_and_threshold():
    heat = np.zeros((20, 20), np.float32)
    for k, (y, x) in enumerate([(2, 2), (10, 10), (17, 3), (5, 15)]):
        heat[y, x] = 0.2 + 0.2 * k
    assert find_instance_centers(heat, 0.1, 3, top_k=2).tolist() == [[5, 15], [17, 3]]
    assert len(find_instance_centers(heat, 0.5, 3)) == 2


def test_forward_backward_odd_size():
    model = build_model("panoptic_deeplab", 7, **SMALL)
    x = paddle.randn([2, 3, 45, 53])
    out = model(x)
    assert [tuple(out[k].shape) for k in ("semantic", "center", "offset")] == \
        [(2, 7, 45, 53), (2, 1, 45, 53), (2, 2, 45, 53)]
    pans = np.full((2, 45, 53), 1 * LABEL_DIVISOR, np.int64)
    pans[:, 10:20, 10:25] = 4001
    loss = PanopticDeepLabLoss(THINGS, sigma=2.0)(out, pans)
    loss.backward()
    assert model.offset_head[1].weight.grad is not None
    pan = model.panoptic(x)
    assert pan.shape == (2, 45, 53) and pan.dtype == np.int64
    both, sem = model.panoptic(x, semantic=True)     # the semantic head's classes from the same pass
    model.eval()
    assert np.array_equal(both, pan) and np.array_equal(sem, model(x)["semantic"].argmax(1).numpy())


def test_learns_a_tiny_set(fit_tiny):
    paddle.seed(0)
    data = PanopticScenes(4, 48, seed=0)
    x = paddle.to_tensor(np.stack([data[i][0] for i in range(4)]))
    pans = np.stack([data[i][1] for i in range(4)])
    model = build_model("panoptic_deeplab", 7, **SMALL)
    loss_fn = PanopticDeepLabLoss(THINGS, sigma=2.0, offset_weight=0.1)
    targets = {k: paddle.to_tensor(v) for k, v in loss_fn.targets.batch(pans).items()}   # built once
    stuff_pq = lambda: panoptic_quality(model.panoptic(x), pans, THINGS, STUFF)["stuff"][0]  # noqa: E731
    before = stuff_pq()
    hist = fit_tiny(model, lambda m: loss_fn.parts(m(x), targets), steps=25, lr=3e-3)
    assert (hist[-3:].mean(0) < hist[:3].mean(0)).all(), hist     # every term drops
    assert hist[-3:].sum(1).mean() < 0.5 * hist[:3].sum(1).mean()
    assert stuff_pq() > before + 0.1
