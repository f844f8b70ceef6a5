"""Mask R-CNN (its box operations are tested in tests/lib/ops/test_ops.py)."""
import numpy as np
import paddle
import pytest

from common.data import VARIANTS
from common.data.instances import SceneInstances, collate_instances, targets_to_tensors
from common.engine import Trainer
from common.models import build_model

THINGS = VARIANTS["scenes"].thing_ids


def test_rpn_outputs_line_up_with_anchors():
    model = build_model("mask_rcnn", 7, thing_ids=THINGS, preset="tiny")
    feats = model.features(paddle.rand([1, 3, 45, 61]))
    objs, deltas = model.rpn(feats)
    for anc, o, d in zip(model.anchors(feats), objs, deltas):
        assert anc.shape[0] == o.shape[1] == d.shape[1]


def _batch(n, size, seed=0):
    ds = SceneInstances(n, size, seed)
    x, t = collate_instances([ds[i] for i in range(n)])
    return paddle.to_tensor(x), targets_to_tensors(t)


def test_mask_rcnn_forward_backward_odd_size_and_predict():
    model = build_model("mask_rcnn", 7, thing_ids=THINGS, preset="tiny")
    x, t = _batch(2, (61, 75))
    model.train()
    losses = model(x, t)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box", "loss_mask"}
    total = paddle.add_n(list(losses.values()))
    assert np.isfinite(float(total))
    total.backward()
    for p in (model.backbone.conv1.weight, model.rpn.objectness.weight,
              model.box_head.cls.weight, model.mask_head.predict.weight):
        assert p.grad is not None and float(p.grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="needs targets"):
        model(x)
    model.eval()
    with paddle.no_grad():
        out = model(x[:, :, :57, :67])
    assert len(out) == 2
    for o in out:
        n = len(o["scores"])
        assert o["boxes"].shape == (n, 4) and o["masks"].shape == (n, 57, 67)
        assert o["masks"].dtype == bool and set(o["labels"].tolist()) <= {4, 5, 6}
        assert (o["boxes"][:, 2] <= 67).all() and (o["boxes"][:, 3] <= 57).all()


def test_mask_rcnn_learns_tiny_set():
    ds = SceneInstances(4, 64, seed=3)
    model = build_model("mask_rcnn", 7, thing_ids=THINGS, preset="cpu", width=8)
    hist = Trainer(model, ds, SceneInstances(2, 64, seed=9), iters=30, batch_size=4, lr=3e-3,
                   optimizer="adam", warmup=3, clip_norm=10.0, progress=False).fit()
    # evaluation of an instance model: mask AP (pycocotools) once at the end
    assert hist["eval_iter"] == [30] and 0 <= hist["ap"][0] <= 1 and len(hist["ap50"]) == 1
    first, last = np.mean(hist["loss"][:3]), np.mean(hist["loss"][-3:])
    assert last < 0.6 * first, (first, last)
    assert np.mean(hist["loss_mask"][-3:]) < np.mean(hist["loss_mask"][:3])


def test_images_without_objects():
    model = build_model("mask_rcnn", 7, thing_ids=THINGS, preset="tiny", score_thresh=1.1)
    empty = dict(boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
                 masks=np.zeros((0, 40, 50), bool))
    losses = model(paddle.rand([2, 3, 40, 50]), targets_to_tensors([empty, empty]))
    assert float(losses["loss_rpn_cls"]) > 0 and float(losses["loss_mask"]) == 0
    model.eval()
    with paddle.no_grad():
        out = model(paddle.rand([1, 3, 40, 50]))           # nothing passes the threshold
    assert out[0]["boxes"].shape == (0, 4) and out[0]["masks"].shape == (0, 40, 50)


@pytest.mark.parametrize("p6,norm", [(True, None), (False, "gn")])
def test_fpn_options_and_odd_sizes(p6, norm):
    """The one FPN (layers.FPN) of Mask R-CNN, UPSNet and SOLO: each level at its input's size,
    P6 a stride-2 subsample of the top level; norm='gn' adds GroupNorm, no conv bias."""
    from common.models.layers import FPN

    feats = [paddle.rand([1, c, s, s + 2]) for c, s in ((8, 23), (16, 12), (32, 6))]
    fpn = FPN([8, 16, 32], 12, p6=p6, norm=norm)
    out = fpn(feats)
    assert [tuple(o.shape) for o in out[:3]] == [(1, 12, 23, 25), (1, 12, 12, 14), (1, 12, 6, 8)]
    assert len(out) == 3 + p6
    if p6:
        np.testing.assert_array_equal(out[3].numpy(), out[2].numpy()[:, :, ::2, ::2])
    kinds = {type(m).__name__ for m in fpn.sublayers()}
    assert ("GroupNorm" in kinds) == (norm == "gn")
    # the top-down path: the finest output depends on the coarsest input
    feats[2].stop_gradient = False
    fpn(feats)[0].sum().backward()
    assert float(feats[2].grad.abs().sum()) > 0
    with pytest.raises(ValueError, match="norm"):
        FPN([8], 4, norm="bn")


def test_mask_rcnn_and_solo_share_the_fpn():
    from common.models.layers import FPN

    mrcnn = build_model("mask_rcnn", 7, thing_ids=THINGS, preset="tiny")
    solo = build_model("solo", 7, thing_ids=THINGS, preset="tiny")
    assert type(mrcnn.fpn) is FPN and type(solo.fpn) is FPN and solo.fpn.p6 and not mrcnn.fpn.p6
