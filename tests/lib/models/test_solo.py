"""SOLO: target assignment, Matrix NMS against Paddle's, forward/backward, learning."""
import numpy as np
import paddle
import pytest

from common.data.instances import GridTargets, SceneInstances, assign_grid, collate_instances
from common.data.panoptic import PanopticScenes, instances_from_panoptic
from common.engine import Trainer
from common.models import build_model
from common.models.solo import dice_loss_masks, matrix_nms

SMALL = dict(depth=18, width=8, fpn_channels=16, head_channels=16, stacked_convs=1,
             levels=(1, 2), num_grids=(8, 5), scale_ranges=((0, 14), (10, 1e4)))


def test_matrix_nms_equals_paddle_on_box_masks():
    """Masks that are axis-aligned rectangles have mask IoU = box IoU, so Paddle's box
    Matrix NMS (normalized=False counts pixels inclusively) must decay scores as ours."""
    rng = np.random.default_rng(0)
    n, size = 12, 40
    x0, y0 = rng.integers(0, 25, n), rng.integers(0, 25, n)
    x1, y1 = x0 + rng.integers(4, 15, n), y0 + rng.integers(4, 15, n)
    masks = np.zeros((n, size, size), bool)
    for k in range(n):
        masks[k, y0[k]:y1[k] + 1, x0[k]:x1[k] + 1] = True
    labels = rng.integers(0, 2, n)
    scores = rng.uniform(0.2, 1.0, n)
    for gaussian in (True, False):
        ours = matrix_nms(masks, labels, scores, kernel="gaussian" if gaussian else "linear", sigma=2.0)
        boxes = np.stack([x0, y0, x1, y1], 1).astype(np.float32)[None]
        cls_scores = np.zeros((1, 2, n), np.float32)
        cls_scores[0, labels, np.arange(n)] = scores
        out, _, index = paddle.vision.ops.matrix_nms(
            paddle.to_tensor(boxes), paddle.to_tensor(cls_scores), score_threshold=0.01,
            post_threshold=0.0, nms_top_k=-1, keep_top_k=-1, use_gaussian=gaussian, gaussian_sigma=2.0,
            background_label=-1, normalized=False, return_index=True)
        theirs = np.zeros(n)
        theirs[index.numpy().ravel() % n] = out.numpy()[:, 1]
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert (ours <= scores + 1e-12).all() and ours[np.argmax(scores)] == pytest.approx(scores.max())


def test_assignment_centre_cell_and_scale():
    model = build_model("solo", 3, **SMALL)
    masks = np.zeros((2, 64, 64), bool)
    masks[0, 4:12, 40:48] = True       # small (sqrt area 8): level 0, grid 8, centre cell (1, 5)
    masks[1, 20:60, 8:48] = True       # large (40): level 1, grid 5, centre (40, 28) -> cell (3, 2)
    (cate0, pos0), (cate1, pos1) = assign_grid(masks, np.array([2, 1]), (64, 64), [(16, 16), (8, 8)],
                                               model.scale_ranges, model.num_grids, model.sigma)
    # centre region: centre +- 0.1 x box size; the small one's (y 7.2..8.8) spans rows 0 and 1
    assert np.argwhere(cate0 >= 0).tolist() == [[0, 5], [1, 5]] and cate0.max() == 2
    assert cate1[3, 2] == 1 and set(np.unique(cate1)) == {-1, 1}
    assert len(pos0) == 2 and pos0[0][2].shape == (16, 16)
    assert pos0[0][2].sum() == pytest.approx(masks[0].sum() / 16)     # soft target keeps area


def test_dice_loss_values():
    g = paddle.to_tensor(np.eye(4, dtype=np.float32)[None])
    assert float(dice_loss_masks(g, g, eps=0).mean()) == pytest.approx(0.0)
    assert float(dice_loss_masks(1 - g, g, eps=0).mean()) == pytest.approx(1.0)


def test_forward_backward_odd_size_and_eval_output():
    model = build_model("solo", 3, **SMALL)
    x = paddle.randn([2, 3, 45, 53])
    m = np.zeros((1, 45, 53), bool)
    m[0, 10:30, 12:33] = True
    targets = [dict(masks=m, labels=np.array([1])), dict(masks=np.zeros((0, 45, 53), bool), labels=np.zeros(0, int))]
    losses = model(x, targets)
    assert set(losses) == {"loss_cate", "loss_mask", "loss"}
    losses["loss"].backward()
    assert model.mask_out_x[1].weight.grad is not None and model.cate_out.weight.grad is not None
    model.eval()
    model.score_thresh = 0.0          # untrained: accept every cell so masks come out
    res = model(x)
    assert len(res) == 2 and res[0]["masks"].shape[1:] == (45, 53)
    assert res[0]["masks"].dtype == bool and len(res[0]["labels"]) == len(res[0]["scores"])


def test_learns_a_tiny_set(fit_tiny):
    paddle.seed(0)
    data = PanopticScenes(4, 48, seed=0)
    x = paddle.to_tensor(np.stack([data[i][0] for i in range(4)]))
    targets = [instances_from_panoptic(data[i][1], data.thing_ids) for i in range(4)]
    model = build_model("solo", 3, **SMALL)
    hist = fit_tiny(model, lambda m: m(x, targets)["loss"], steps=25, lr=3e-3)
    assert np.mean(hist[-3:]) < 0.5 * np.mean(hist[:3]), hist


@pytest.mark.parametrize("size", [(45, 53), (49, 64), (64, 64)])
def test_pipeline_targets_fit_the_outputs_and_give_the_same_loss(size):
    """GridTargets (built by the dataset) predicts each level's mask size, for odd sizes too,
    and the loss on them equals the loss on targets assigned inside the loss."""
    model = build_model("solo", 7, thing_ids=(4, 5, 6), **SMALL)
    ds = SceneInstances(2, size, seed=2, target_transform=model.target_transform())
    x, t = collate_instances([ds[i] for i in range(2)])
    out = model.heads(paddle.to_tensor(x))
    for k, shape in enumerate(model.target_transform().mask_shapes(size)):
        assert tuple(out["mask_x"][k].shape[-2:]) == shape
    raw = [dict(masks=d["masks"], labels=d["labels"]) for d in t]
    built, on_the_fly = model.loss(out, t, size), model.loss(out, raw, size)
    assert float(built["loss"]) == float(on_the_fly["loss"])
    assert sum(len(c) for d in t for c in d["grid_cells"]) > 0
    with pytest.raises(ValueError, match="grid_masks of level 0"):
        model.loss(out, [dict(d, grid_masks=[m[:, :-1] for m in d["grid_masks"]]) for d in t], size)


def test_labels_are_dataset_class_ids():
    """num_classes counts all classes; thing_ids maps the category branch to class ids."""
    model = build_model("solo", 7, thing_ids=(4, 5, 6), **SMALL)
    assert model.cate_out.weight.shape[0] == 3
    masks = np.zeros((1, 40, 40), bool)
    masks[0, 10:30, 10:30] = True
    t = GridTargets((4, 5, 6), model.scale_ranges, model.num_grids, model.sigma, model.levels)(
        dict(masks=masks, labels=np.array([6])))
    assert set(np.unique(t["grid_cate"][1]).tolist()) == {-1, 2}            # index of class 6
    with pytest.raises(ValueError, match="not among the model's thing_ids"):
        model.target_transform()(dict(masks=masks, labels=np.array([1])))
    model.eval()
    model.score_thresh, model.mask_thresh, model.update_thresh = 0.0, 0.1, 0.0   # untrained
    res = model(paddle.randn([1, 3, 40, 40]))
    assert len(res[0]["labels"]) and set(res[0]["labels"].tolist()) <= {4, 5, 6}


def test_trainer_trains_solo_from_pipeline_targets():
    paddle.seed(0)
    model = build_model("solo", 7, thing_ids=(4, 5, 6), **SMALL)
    ds = SceneInstances(4, 48, seed=0, target_transform=model.target_transform())
    hist = Trainer(model, ds, iters=20, batch_size=4, lr=3e-3, optimizer="adam", progress=False).fit()
    assert set(hist) >= {"loss_cate", "loss_mask"} and "ap" in hist
    np.testing.assert_allclose(hist["loss"], np.add(hist["loss_cate"], hist["loss_mask"]), rtol=1e-5)
    assert np.mean(hist["loss"][-3:]) < 0.6 * np.mean(hist["loss"][:3]), hist["loss"]
