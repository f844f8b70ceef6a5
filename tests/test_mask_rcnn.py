"""Detection helpers (anchors, box coding, matching, NMS, RoIAlign by hand) and Mask R-CNN."""
import numpy as np
import paddle
import pytest
from paddle.vision.ops import roi_align

from common import detection as det
from common.data import VARIANTS
from common.data.instances import SceneInstances, collate_instances
from common.models import build_model
from common.models.mask_rcnn import small_config

THINGS = VARIANTS["scenes"].thing_ids


def _random_boxes(rng, n, size):
    xy = rng.uniform(0, size * 0.7, (n, 2))
    wh = rng.uniform(2, size * 0.5, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def test_cell_anchors_area_and_ratio():
    a = det.cell_anchors([16, 32], [0.5, 1.0, 2.0])
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    np.testing.assert_allclose(w * h, [256] * 3 + [1024] * 3, rtol=1e-5)
    np.testing.assert_allclose(h / w, [0.5, 1, 2] * 2, rtol=1e-5)
    np.testing.assert_allclose(a[:, :2] + a[:, 2:], 0, atol=1e-5)      # centred on 0


def test_grid_anchors_order_and_centres():
    a = det.grid_anchors((3, 5), 8, [16], [0.5, 1.0, 2.0])
    assert a.shape == (3 * 5 * 3, 4)
    centres = ((a[:, :2] + a[:, 2:]) / 2).reshape(3, 5, 3, 2)
    # (y, x, a) order: index [y, x] is the cell at column x, row y
    np.testing.assert_allclose(centres[2, 4, 0], [4.5 * 8, 2.5 * 8])
    np.testing.assert_allclose(centres[:, :, 0], centres[:, :, 2])


def test_rpn_outputs_line_up_with_anchors():
    model = build_model("mask_rcnn", 7, thing_ids=THINGS, **small_config(4))
    feats = model.features(paddle.rand([1, 3, 45, 61]))
    objs, deltas = model.rpn(feats)
    for anc, o, d in zip(model.anchors(feats), objs, deltas):
        assert anc.shape[0] == o.shape[1] == d.shape[1]


def test_box_coding_round_trip():
    rng = np.random.default_rng(0)
    ref, gt = _random_boxes(rng, 50, 100), _random_boxes(rng, 50, 100)
    for weights in [(1, 1, 1, 1), (10, 10, 5, 5)]:
        d = det.encode_boxes(ref, gt, weights)
        np.testing.assert_allclose(det.decode_boxes(ref, d, weights).numpy(), gt, atol=1e-3)
    # a box encodes to zero against itself, and a shifted box to its shift / size
    np.testing.assert_allclose(det.encode_boxes(ref, ref).numpy(), 0, atol=1e-6)
    d = det.encode_boxes([[0, 0, 10, 20]], [[5, 0, 15, 40]]).numpy()[0]
    np.testing.assert_allclose(d, [0.5, 0.5, 0, np.log(2)], atol=1e-6)


def test_box_iou_hand_case():
    a = [[0, 0, 10, 10], [0, 0, 10, 10]]
    b = [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]]
    np.testing.assert_allclose(det.box_iou(a, b).numpy()[0], [50 / 150, 0, 1], atol=1e-6)
    assert det.box_iou(np.zeros((0, 4)), b).shape == [0, 3]


def test_match_boxes_thresholds_and_low_quality():
    iou = paddle.to_tensor([[0.8, 0.1], [0.5, 0.2], [0.1, 0.2], [0.0, 0.35]])
    matched, labels = det.match_boxes(iou, 0.7, 0.3)
    assert matched.numpy().tolist() == [0, 0, 1, 1]
    assert labels.numpy().tolist() == [1, -1, 0, -1]
    # gt 1's best candidate (row 3, IoU 0.35) becomes foreground under the RPN rule
    _, labels = det.match_boxes(iou, 0.7, 0.3, allow_low_quality=True)
    assert labels.numpy().tolist() == [1, -1, 0, 1]
    _, labels = det.match_boxes(paddle.zeros([3, 0]), 0.7, 0.3)
    assert labels.numpy().tolist() == [0, 0, 0]


def test_sample_labels_balance():
    labels = paddle.to_tensor([1] * 10 + [0] * 100 + [-1] * 20)
    pos, neg = det.sample_labels(labels, 32, 0.25)
    assert pos.shape[0] == 8 and neg.shape[0] == 24
    assert (labels.numpy()[pos.numpy()] == 1).all() and (labels.numpy()[neg.numpy()] == 0).all()
    assert len(set(neg.numpy().tolist())) == 24
    pos, neg = det.sample_labels(paddle.to_tensor([1, 0, 0, -1]), 32, 0.5)
    assert pos.shape[0] == 1 and neg.shape[0] == 2


def test_nms_by_hand_matches_paddle():
    rng = np.random.default_rng(1)
    boxes = _random_boxes(rng, 60, 50)
    scores = rng.random(60).astype(np.float32)
    ours = det.nms_numpy(boxes, scores, 0.5)
    theirs = det.batched_nms(paddle.to_tensor(boxes), paddle.to_tensor(scores),
                             paddle.zeros([60], "int64"), 0.5).numpy()
    assert ours.tolist() == theirs.tolist() and 1 < len(ours) < 60
    # two classes never suppress each other
    two = det.batched_nms(paddle.to_tensor(boxes[:1].repeat(2, 0)), paddle.to_tensor([0.9, 0.8]),
                          paddle.to_tensor([0, 1]), 0.5)
    assert two.numpy().tolist() == [0, 1]


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio,scale,out", [(2, 1.0, 7), (-1, 0.5, (3, 5)), (1, 0.25, 4)])
def test_roi_align_by_hand_matches_paddle(aligned, ratio, scale, out):
    rng = np.random.default_rng(2)
    feat = rng.standard_normal((1, 3, 11, 13)).astype(np.float32)
    boxes = _random_boxes(rng, 6, 13 / scale)
    boxes[0] = [-3, -2, 4 / scale, 60]                       # reaches outside the map
    ours = det.roi_align_numpy(feat[0], boxes, out, scale, ratio, aligned)
    theirs = roi_align(paddle.to_tensor(feat), paddle.to_tensor(boxes), paddle.to_tensor([6], "int32"),
                       out, scale, ratio, aligned).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_crop_and_paste_round_trip():
    mask = np.zeros((1, 40, 50), np.float32)
    mask[0, 10:30, 12:40] = 1
    box = np.array([[12, 10, 40, 30]], np.float32)
    crop = det.crop_and_resize(mask, box, 14).numpy()
    # the box is all object; bilinear reads at the box's edge see a little of the outside
    assert crop.shape == (1, 14, 14) and crop.min() > 0.9
    back = det.paste_masks(paddle.to_tensor((crop >= 0.5).astype(np.float32)), box, (40, 50)).numpy()
    np.testing.assert_allclose(back, mask, atol=1e-5)
    np.testing.assert_allclose(det.boxes_inside(box, (40, 50)).numpy(), mask)


def _batch(n, size, seed=0):
    ds = SceneInstances(n, size, seed)
    x, t = collate_instances([ds[i] for i in range(n)])
    return paddle.to_tensor(x), det.targets_to_paddle(t)


def test_mask_rcnn_forward_backward_odd_size_and_predict():
    model = build_model("mask_rcnn", 7, thing_ids=THINGS, **small_config(4))
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
    model = build_model("mask_rcnn", 7, thing_ids=THINGS, **small_config(8))
    hist = det.train_detector(model, ds, iters=30, batch_size=4, lr=3e-3, progress=False)
    first, last = np.mean(hist["loss"][:3]), np.mean(hist["loss"][-3:])
    assert last < 0.6 * first, (first, last)
    assert np.mean(hist["loss_mask"][-3:]) < np.mean(hist["loss_mask"][:3])


def test_bench_entries_are_the_small_configs():
    from common import bench
    from common.models import upsnet

    entries = dict(bench.BENCH_MODELS)
    assert entries["mask_rcnn"] == dict(thing_ids=THINGS, **small_config(16))
    assert entries["upsnet"] == dict(thing_ids=THINGS, stuff_ids=VARIANTS["scenes"].stuff_ids,
                                     **upsnet.small_config(16))


def test_images_without_objects():
    model = build_model("mask_rcnn", 7, thing_ids=THINGS, **dict(small_config(4), score_thresh=1.1))
    empty = dict(boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
                 masks=np.zeros((0, 40, 50), bool))
    losses = model(paddle.rand([2, 3, 40, 50]), det.targets_to_paddle([empty, empty]))
    assert float(losses["loss_rpn_cls"]) > 0 and float(losses["loss_mask"]) == 0
    model.eval()
    with paddle.no_grad():
        out = model(paddle.rand([1, 3, 40, 50]))           # nothing passes the threshold
    assert out[0]["boxes"].shape == (0, 4) and out[0]["masks"].shape == (0, 40, 50)
