"""UPSNet: the parameter-free panoptic head on hand-made logits, the model end to end."""
import numpy as np
import paddle
import pytest

from common.data import LABEL_DIVISOR, VARIANTS
from common.data.instances import (PanopticHeadTargets, SceneInstances, collate_instances,
                                   panoptic_head_target, targets_to_tensors)
from common.engine import Trainer
from common.models import build_model
from common.models.upsnet import panoptic_from_logits, panoptic_logits


def _hand_case():
    """One row of 6 pixels; stuff classes 0 and 1, thing class 2, one instance in x 2..4."""
    sem = paddle.to_tensor([[[5, 5, 0, 0, 0, 0]], [[0, 0, 0, 0, 0, 4]], [[0, 0, 3, 3, 3, 1]]],
                           "float32")
    boxes = paddle.to_tensor([[2, 0, 4, 1]], "float32")
    masks = paddle.to_tensor([[[0, 0, 2, -4, 0, 0]]], "float32")     # pasted: zero outside
    return sem, boxes, masks


def test_panoptic_head_hand_case():
    sem, boxes, masks = _hand_case()
    z = panoptic_logits(sem, boxes, paddle.to_tensor([2]), masks, (0, 1), (2,)).numpy()[:, 0]
    np.testing.assert_allclose(z[2], [0, 0, 5, -1, 0, 0])    # thing logit in the box + mask logit
    np.testing.assert_allclose(z[3], [0, 0, 1, 7, 3, 1])     # unknown = max thing - max mask
    pan = panoptic_from_logits(paddle.to_tensor(z[:, None]), [2], (0, 1))
    # x3: the mask rejects the pixel that the semantic head calls a thing -> unknown;
    # x4: a thing pixel with no instance around it -> unknown
    assert pan[0].tolist() == [0, 0, 2001, 255000, 255000, 1000]


def test_panoptic_head_without_instances():
    sem, _, _ = _hand_case()
    z = panoptic_logits(sem, paddle.zeros([0, 4]), paddle.zeros([0], "int64"),
                        paddle.zeros([0, 1, 6]), (0, 1), (2,))
    assert z.shape == [3, 1, 6]
    pan = panoptic_from_logits(z, [], (0, 1))
    assert pan[0].tolist() == [0, 0, 255000, 255000, 255000, 1000]


def _model(width=4, **kw):
    return build_model("upsnet", 7, thing_ids=VARIANTS["scenes"].thing_ids, stuff_ids=VARIANTS["scenes"].stuff_ids,
                       preset="cpu", width=width, **kw)


def test_panoptic_target_hides_instances_as_unknown():
    model = _model()
    semantic = np.array([[0, 1, 4, 4, 5, 255]])
    masks = np.array([[[0, 0, 1, 1, 0, 0]], [[0, 0, 0, 0, 1, 0]]], bool)
    t = model.panoptic_target(semantic, masks, np.array([False, True])).numpy()
    # stuff 0 and 1 -> channels 0, 1; the shown instance -> 4 + 0; the hidden one -> unknown 5
    assert t.tolist() == [[0, 1, 5, 5, 4, 255]]
    # the same function builds it in the data pipeline (stuff 0..3 of the scenes variant)
    assert panoptic_head_target(semantic, masks, [True, True], (0, 1, 2, 3)).tolist() == \
        [[0, 1, 4, 4, 5, 255]]


def test_pipeline_targets_equal_the_loss_targets():
    """The dataset's target_transform draws the hidden instances from the item's (seed, index)
    and builds the same panoptic target as the function the model falls back on."""
    model = _model()
    ds = SceneInstances(2, 48, seed=1, target_transform=model.target_transform())
    x, t = collate_instances([ds[(i, 7)] for i in range(2)])
    again = collate_instances([ds[(i, 7)] for i in range(2)])[1]
    assert all((a["shown"] == b["shown"]).all() for a, b in zip(t, again))        # a function of (seed, i)
    assert not all(ds[(0, s)][1]["shown"].all() for s in range(20))               # some hidden
    for target in t:
        manual = panoptic_head_target(target["semantic"], target["masks"], target["shown"], model.stuff_ids)
        np.testing.assert_array_equal(target["panoptic_target"], manual)
    assert isinstance(model.target_transform(), PanopticHeadTargets)


def _batch(n, size, seed=0):
    ds = SceneInstances(n, size, seed)
    x, t = collate_instances([ds[i] for i in range(n)])
    return paddle.to_tensor(x), targets_to_tensors(t)


@pytest.mark.parametrize("deformable", [False, True])
def test_upsnet_forward_backward_odd_size(deformable):
    model = _model(deformable=deformable)
    x, t = _batch(2, (53, 67))
    model.train()
    losses = model(x, t)
    assert {"loss_sem", "loss_pan", "loss_mask", "loss_rpn_cls"} <= set(losses)
    total = paddle.add_n(list(losses.values()))
    total.backward()
    for p in (model.backbone.conv1.weight, model.semantic_head.classifier.weight,
              model.mask_head.predict.weight):
        assert p.grad is not None and float(p.grad.abs().sum()) > 0
    model.eval()
    with paddle.no_grad():
        out = model(x[:, :, :49, :59])
    for o in out:
        assert o["panoptic"].shape == (49, 59) and o["semantic"].shape == (49, 59)
        assert set(np.unique(o["panoptic"] // LABEL_DIVISOR).tolist()) <= set(range(7)) | {255}


def test_panoptic_loss_reaches_mask_head():
    """The panoptic head has no parameters but passes gradients to the heads below it."""
    model = _model()
    x, t = _batch(2, 48, seed=1)
    model.train()
    model(x, t)["loss_pan"].backward()
    assert float(model.mask_head.predict.weight.grad.abs().sum()) > 0
    assert float(model.semantic_head.classifier.weight.grad.abs().sum()) > 0
    assert model.rpn.objectness.weight.grad is None


def test_upsnet_learns_tiny_set():
    ds = SceneInstances(4, 64, seed=3)
    model = _model(width=8)
    ds.target_transform = model.target_transform()
    hist = Trainer(model, ds, iters=25, batch_size=4, lr=3e-3, optimizer="adam", warmup=2,
                   clip_norm=10.0, progress=False).fit()
    for key in ("loss", "loss_sem", "loss_pan"):
        first, last = np.mean(hist[key][:3]), np.mean(hist[key][-3:])
        assert last < 0.7 * first, (key, first, last)
