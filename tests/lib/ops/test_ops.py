"""common.ops against Paddle's built-ins on many seeded random configurations.

Tolerance: float32, max |ours - paddle| <= ATOL + RTOL * |paddle| with ATOL = RTOL = 1e-4
(NumPy and Paddle sum products in different orders; values are O(1) to O(10)).
"""
import cv2
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from paddle.vision.ops import roi_align

from common import ops

ATOL = RTOL = 1e-4
N_RANDOM = 40          # random configurations per operator (seeded)


def close(ours, ref):
    ref = ref.numpy() if isinstance(ref, paddle.Tensor) else np.asarray(ref)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    assert ours.dtype == np.float32 or ours.dtype == ref.dtype
    np.testing.assert_allclose(ours, ref, atol=ATOL, rtol=RTOL)


def rng_cases(seed):
    return [np.random.default_rng([seed, i]) for i in range(N_RANDOM)]


# ------------------------------------------------------------------ bilinear resize
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("rng", rng_cases(1))
def test_bilinear_random(rng, align_corners):
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    h, w = (int(v) for v in rng.integers(1, 20, 2))
    # up, down, non-square, and often an output side of 1 (Paddle then takes pixel 0)
    oh, ow = (int(v) if rng.random() < 0.8 else 1 for v in rng.integers(1, 40, 2))
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    ref = F.interpolate(paddle.to_tensor(x), size=(oh, ow), mode="bilinear",
                        align_corners=align_corners)
    close(ops.bilinear_resize(x, (oh, ow), align_corners), ref)
    close(ops.bilinear_resize(x[0], (oh, ow), align_corners), ref[0])        # (C, H, W)
    close(ops.bilinear_resize(x[0, 0], (oh, ow), align_corners), ref[0, 0])  # (H, W)


@pytest.mark.parametrize("rng", rng_cases(2))
def test_bilinear_matches_opencv(rng):
    h, w = (int(v) for v in rng.integers(1, 30, 2))
    oh, ow = (int(v) for v in rng.integers(2, 60, 2))    # OpenCV samples the centre for size 1
    x = rng.standard_normal((h, w)).astype(np.float32)
    ref = cv2.resize(x, (ow, oh), interpolation=cv2.INTER_LINEAR)
    close(ops.bilinear_resize(x, (oh, ow)), ref.reshape(oh, ow))


def test_bilinear_by_hand():
    # 2 pixels -> 4: half-pixel centres give 0, 0.25, 0.75, 1 (borders clamp)
    x = np.array([[0.0, 1.0]], np.float32)
    assert np.allclose(ops.bilinear_resize(x, (1, 4)), [[0, 0.25, 0.75, 1]])
    assert np.allclose(ops.bilinear_resize(x, (1, 4), align_corners=True), [[0, 1 / 3, 2 / 3, 1]])
    # an output side of 1 takes the first input pixel, as Paddle does
    assert np.allclose(ops.bilinear_resize(np.arange(6, dtype=np.float32)[None], (1, 1)), 0)
    with pytest.raises(ValueError, match="size"):
        ops.bilinear_resize(x, (0, 3))


# --------------------------------------------------------------- pooling / unpooling
@pytest.mark.parametrize("rng", rng_cases(3))
def test_maxpool_unpool_random(rng):
    k = int(rng.integers(1, 5))
    s = int(rng.integers(1, 5))                            # stride > kernel too
    p = int(rng.integers(0, k // 2 + 1))                   # Paddle allows p <= k/2
    h, w = (int(v) for v in rng.integers(k, 17, 2))
    x = rng.standard_normal((int(rng.integers(1, 3)), int(rng.integers(1, 4)), h, w)).astype(np.float32)
    ref_v, ref_i = F.max_pool2d(paddle.to_tensor(x), k, s, p, return_mask=True)
    v, idx = ops.max_pool2d_with_indices(x, k, s, p)
    close(v, ref_v)
    np.testing.assert_array_equal(idx, ref_i.numpy())
    out_size = (h, w)
    ref_u = F.max_unpool2d(ref_v, ref_i, k, s, p, output_size=out_size)
    close(ops.max_unpool2d(v, idx, k, s, p, output_size=out_size), ref_u)
    # (C, H, W) input
    v3, i3 = ops.max_pool2d_with_indices(x[0], k, s, p)
    np.testing.assert_array_equal(i3, ref_i.numpy()[0])


@pytest.mark.parametrize("rng", rng_cases(4))
def test_unpool_random_indices(rng):
    k = int(rng.integers(2, 4))
    h, w = (int(v) for v in rng.integers(1, 8, 2))
    x = rng.standard_normal((1, 2, h, w)).astype(np.float32)
    idx = ops.random_pool_indices(x.shape, k, seed=int(rng.integers(1000)))
    # each index lies inside its own pooling window
    rows, cols = idx // (w * k), idx % (w * k)
    assert np.all(rows // k == np.arange(h)[:, None]) and np.all(cols // k == np.arange(w))
    ref = F.max_unpool2d(paddle.to_tensor(x), paddle.to_tensor(idx.astype(np.int32)), k)
    close(ops.max_unpool2d(x, idx, k), ref)


def test_unpool_bad_index():
    with pytest.raises(ValueError, match="indices"):
        ops.max_unpool2d(np.ones((1, 1, 1), np.float32), np.array([[[9]]]), 2)


# ------------------------------------------------------------------ convolutions
def random_conv_case(rng):
    k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    s = int(rng.integers(1, 5))
    d = int(rng.integers(1, 4))
    p = int(rng.integers(0, 4))
    span = [d * (kk - 1) + 1 for kk in k]
    h = int(rng.integers(max(1, span[0] - 2 * p), 18))
    w = int(rng.integers(max(1, span[1] - 2 * p), 18))
    cin, cout = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((int(rng.integers(1, 3)), cin, h, w)).astype(np.float32)
    wt = rng.standard_normal((cout, cin) + k).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    return x, wt, b, s, p, d


@pytest.mark.parametrize("rng", rng_cases(5))
def test_conv2d_random(rng):
    x, w, b, s, p, d = random_conv_case(rng)
    ref = F.conv2d(paddle.to_tensor(x), paddle.to_tensor(w), paddle.to_tensor(b), s, p, d)
    close(ops.conv2d(x, w, b, s, p, d), ref)
    close(ops.conv2d(x[0], w, b, s, p, d), ref[0])


@pytest.mark.parametrize("rng", rng_cases(6))
def test_atrous_random(rng):
    x, w, b, s, p, d = random_conv_case(rng)
    ref = F.conv2d(paddle.to_tensor(x), paddle.to_tensor(w), paddle.to_tensor(b), s, p, d)
    close(ops.atrous_conv2d(x, w, d, b, stride=s, padding=p), ref)


def test_dilate_kernel_and_same_padding():
    w = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    wd = ops.dilate_kernel(w, 2)
    assert wd.shape == (1, 1, 5, 5) and wd[0, 0, 0, 1] == 0 and wd[0, 0, 4, 4] == 9
    x = np.random.rand(1, 9, 11).astype(np.float32)
    assert ops.atrous_conv2d(x, w, 3, padding="same").shape == (1, 9, 11)


@pytest.mark.parametrize("rng", rng_cases(7))
def test_transposed_conv_random(rng):
    k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    s = int(rng.integers(1, 5))
    p = int(rng.integers(0, min(k) + 1))
    op = int(rng.integers(0, s)) if s > 1 else 0           # output_padding < stride
    h, w = (int(v) for v in rng.integers(1, 12, 2))
    if (h - 1) * s + k[0] + op - 2 * p < 1 or (w - 1) * s + k[1] + op - 2 * p < 1:
        h, w, p = h + 2, w + 2, 0
    cin, cout = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    x = rng.standard_normal((int(rng.integers(1, 3)), cin, h, w)).astype(np.float32)
    wt = rng.standard_normal((cin, cout) + k).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    ref = F.conv2d_transpose(paddle.to_tensor(x), paddle.to_tensor(wt), paddle.to_tensor(b),
                             stride=s, padding=p, output_padding=op)
    close(ops.transposed_conv2d(x, wt, b, s, p, op), ref)
    close(ops.transposed_conv2d_scatter(x, wt, b, s, p, op), ref)
    assert ref.shape[2] == ops.transposed_conv_output_size(h, k[0], s, p, op)
    assert ref.shape[3] == ops.transposed_conv_output_size(w, k[1], s, p, op)


@pytest.mark.parametrize("rng", rng_cases(8))
def test_conv_matrix_transpose(rng):
    k, s = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    p = int(rng.integers(0, k))
    h, w = (int(v) for v in rng.integers(k, 9, 2))
    x = rng.standard_normal((h, w)).astype(np.float32)
    kern = rng.standard_normal((k, k)).astype(np.float32)
    C = ops.conv_matrix((h, w), kern, s, p)
    y = ops.conv2d(x[None], kern[None, None], stride=s, padding=p)[0]
    assert y.shape == (ops.conv_output_size(h, k, s, p), ops.conv_output_size(w, k, s, p))
    np.testing.assert_allclose(C @ x.ravel(), y.ravel(), atol=ATOL, rtol=RTOL)
    # C.T on the conv's output size is Paddle's transposed conv, cut to the input size
    z = rng.standard_normal(y.shape).astype(np.float32)
    op = (h + 2 * p - k) % s, (w + 2 * p - k) % s             # the sizes conv lost by flooring
    ref = F.conv2d_transpose(paddle.to_tensor(z[None, None]), paddle.to_tensor(kern[None, None]),
                             stride=s, padding=p, output_padding=op)
    close((C.T @ z.ravel()).reshape(h, w), ref[0, 0])


def test_output_size_formulas():
    assert ops.conv_output_size(32, 3, 2, 1) == 16                # 越卷越小
    assert ops.transposed_conv_output_size(16, 4, 2, 1) == 32     # 越变越大
    assert ops.transposed_conv_output_size(1, 64, 32, 16) == 32
    with pytest.raises(ValueError, match="w must be"):
        ops.transposed_conv2d(np.ones((2, 3, 3), np.float32), np.ones((3, 1, 2, 2), np.float32))


# ------------------------------------------------------------------ FC as conv
@pytest.mark.parametrize("in_shape", [(6, 1, 1), (3, 2, 5)])
def test_fc_to_conv(in_shape):
    fc = paddle.nn.Linear(int(np.prod(in_shape)), 4)
    conv = ops.fc_to_conv(fc, in_shape)
    x = paddle.randn((2,) + in_shape)
    close(conv(x).numpy()[:, :, 0, 0], fc(x.flatten(1)))
    # on a bigger map the conv slides: a score map, one FC output per position
    big = paddle.randn((1, in_shape[0], in_shape[1] + 3, in_shape[2] + 2))
    scores = conv(big)
    assert tuple(scores.shape) == (1, 4, 4, 3)
    patch = big[:, :, 2:2 + in_shape[1], 1:1 + in_shape[2]]
    close(scores.numpy()[:, :, 2, 1], fc(patch.flatten(1)))
    with pytest.raises(ValueError, match="in_shape"):
        ops.fc_weight_to_conv(np.ones((5, 2)), in_shape=(2, 1, 1))


# ------------------------------------------------------------------ the Day 2 widget
def test_transposed_conv_widget():
    from common.course.widgets import transposed_conv_demo

    fcn = transposed_conv_demo(stride=2, kernel_size=4, padding=1, show=False)
    odd = transposed_conv_demo(stride=2, kernel_size=3, padding=1, show=False)
    assert fcn["output_size"] == 8 and fcn["even"] and not odd["even"]
    assert odd["output_size"] == 7 and odd["output"].shape == (7, 7)
    assert odd["zero_inserted"].shape == (9, 9)           # 4 -> 7 by zero insertion, + 1 a side
    with pytest.raises(ValueError, match="padding"):
        transposed_conv_demo(stride=1, kernel_size=1, padding=3, size=2, show=False)
    transposed_conv_demo(stride=3, kernel_size=5, padding=0, show=True)   # draws (Agg)


# ------------------------------------------------------------------ boxes (Day 6 detectors)
box_ops = ops.boxes


def _random_boxes(rng, n, size):
    xy = rng.uniform(0, size * 0.7, (n, 2))
    wh = rng.uniform(2, size * 0.5, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def test_cell_anchors_area_and_ratio():
    a = box_ops.cell_anchors([16, 32], [0.5, 1.0, 2.0])
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    np.testing.assert_allclose(w * h, [256] * 3 + [1024] * 3, rtol=1e-5)
    np.testing.assert_allclose(h / w, [0.5, 1, 2] * 2, rtol=1e-5)
    np.testing.assert_allclose(a[:, :2] + a[:, 2:], 0, atol=1e-5)      # centred on 0


def test_grid_anchors_order_and_centres():
    a = box_ops.grid_anchors((3, 5), 8, [16], [0.5, 1.0, 2.0])
    assert a.shape == (3 * 5 * 3, 4)
    centres = ((a[:, :2] + a[:, 2:]) / 2).reshape(3, 5, 3, 2)
    # (y, x, a) order: index [y, x] is the cell at column x, row y
    np.testing.assert_allclose(centres[2, 4, 0], [4.5 * 8, 2.5 * 8])
    np.testing.assert_allclose(centres[:, :, 0], centres[:, :, 2])


def test_box_coding_round_trip():
    rng = np.random.default_rng(0)
    ref, gt = _random_boxes(rng, 50, 100), _random_boxes(rng, 50, 100)
    for weights in [(1, 1, 1, 1), (10, 10, 5, 5)]:
        d = box_ops.encode_boxes(ref, gt, weights)
        np.testing.assert_allclose(box_ops.decode_boxes(ref, d, weights).numpy(), gt, atol=1e-3)
    # a box encodes to zero against itself, and a shifted box to its shift / size
    np.testing.assert_allclose(box_ops.encode_boxes(ref, ref).numpy(), 0, atol=1e-6)
    d = box_ops.encode_boxes([[0, 0, 10, 20]], [[5, 0, 15, 40]]).numpy()[0]
    np.testing.assert_allclose(d, [0.5, 0.5, 0, np.log(2)], atol=1e-6)


def test_box_iou_hand_case():
    a = [[0, 0, 10, 10], [0, 0, 10, 10]]
    b = [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]]
    np.testing.assert_allclose(box_ops.box_iou(a, b).numpy()[0], [50 / 150, 0, 1], atol=1e-6)
    assert box_ops.box_iou(np.zeros((0, 4)), b).shape == [0, 3]


def test_match_boxes_thresholds_and_low_quality():
    iou = paddle.to_tensor([[0.8, 0.1], [0.5, 0.2], [0.1, 0.2], [0.0, 0.35]])
    matched, labels = box_ops.match_boxes(iou, 0.7, 0.3)
    assert matched.numpy().tolist() == [0, 0, 1, 1]
    assert labels.numpy().tolist() == [1, -1, 0, -1]
    # gt 1's best candidate (row 3, IoU 0.35) becomes foreground under the RPN rule
    _, labels = box_ops.match_boxes(iou, 0.7, 0.3, allow_low_quality=True)
    assert labels.numpy().tolist() == [1, -1, 0, 1]
    _, labels = box_ops.match_boxes(paddle.zeros([3, 0]), 0.7, 0.3)
    assert labels.numpy().tolist() == [0, 0, 0]


def test_sample_labels_balance():
    labels = paddle.to_tensor([1] * 10 + [0] * 100 + [-1] * 20)
    pos, neg = box_ops.sample_labels(labels, 32, 0.25)
    assert pos.shape[0] == 8 and neg.shape[0] == 24
    assert (labels.numpy()[pos.numpy()] == 1).all() and (labels.numpy()[neg.numpy()] == 0).all()
    assert len(set(neg.numpy().tolist())) == 24
    pos, neg = box_ops.sample_labels(paddle.to_tensor([1, 0, 0, -1]), 32, 0.5)
    assert pos.shape[0] == 1 and neg.shape[0] == 2


def test_nms_by_hand_matches_paddle():
    rng = np.random.default_rng(1)
    boxes = _random_boxes(rng, 60, 50)
    scores = rng.random(60).astype(np.float32)
    ours = box_ops.nms_numpy(boxes, scores, 0.5)
    theirs = box_ops.batched_nms(paddle.to_tensor(boxes), paddle.to_tensor(scores),
                             paddle.zeros([60], "int64"), 0.5).numpy()
    assert ours.tolist() == theirs.tolist() and 1 < len(ours) < 60
    # two classes never suppress each other
    two = box_ops.batched_nms(paddle.to_tensor(boxes[:1].repeat(2, 0)), paddle.to_tensor([0.9, 0.8]),
                          paddle.to_tensor([0, 1]), 0.5)
    assert two.numpy().tolist() == [0, 1]


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio,scale,out", [(2, 1.0, 7), (-1, 0.5, (3, 5)), (1, 0.25, 4)])
def test_roi_align_by_hand_matches_paddle(aligned, ratio, scale, out):
    rng = np.random.default_rng(2)
    feat = rng.standard_normal((1, 3, 11, 13)).astype(np.float32)
    boxes = _random_boxes(rng, 6, 13 / scale)
    boxes[0] = [-3, -2, 4 / scale, 60]                       # reaches outside the map
    ours = box_ops.roi_align_numpy(feat[0], boxes, out, scale, ratio, aligned)
    theirs = roi_align(paddle.to_tensor(feat), paddle.to_tensor(boxes), paddle.to_tensor([6], "int32"),
                       out, scale, ratio, aligned).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_crop_and_resize_reads_bool_masks():
    # a DataLoader hands masks over as bool tensors; RoIAlign needs floats
    mask = np.zeros((2, 20, 20), bool)
    mask[0, 4:12, 4:12] = True
    mask[1, :10, :10] = True                    # the top-left quarter of box 1
    box = np.array([[4, 4, 12, 12], [0, 0, 20, 20]], np.float32)
    crop = box_ops.crop_and_resize(paddle.to_tensor(mask), box, 4).numpy()
    as_float = box_ops.crop_and_resize(mask.astype(np.float32), box, 4).numpy()
    np.testing.assert_array_equal(crop, as_float)
    assert crop[0].min() == 1
    np.testing.assert_allclose(crop[1], np.kron([[1, 0], [0, 0]], np.ones((2, 2))))


def test_crop_and_paste_round_trip():
    mask = np.zeros((1, 40, 50), np.float32)
    mask[0, 10:30, 12:40] = 1
    box = np.array([[12, 10, 40, 30]], np.float32)
    crop = box_ops.crop_and_resize(mask, box, 14).numpy()
    # the box is all object; bilinear reads at the box's edge see a little of the outside
    assert crop.shape == (1, 14, 14) and crop.min() > 0.9
    back = box_ops.paste_masks(paddle.to_tensor((crop >= 0.5).astype(np.float32)), box, (40, 50)).numpy()
    np.testing.assert_allclose(back, mask, atol=1e-5)
    np.testing.assert_allclose(box_ops.boxes_inside(box, (40, 50)).numpy(), mask)
