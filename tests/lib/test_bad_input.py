"""Inputs that used to pass silently (or crash far from their cause) are refused with an
error naming the file or argument: truncated images, negative labels, fractional or NaN
metric input, bad confusion matrices, bad transform arguments, void panoptic labels,
broken or foreign checkpoints (issue 12, "Silent wrong answers")."""
import os

import cv2
import numpy as np
import paddle
import pytest

from common.data import RandomCrop, RandomFlip, RandomScale, SegFolder, read_image, read_label
from common.data.synthetic import LABEL_DIVISOR, VARIANTS
from common.engine import Trainer
from common.metrics import confusion_matrix, segmentation_scores
from common.models import build_model
from common.models.panoptic_deeplab import PanopticDeepLabLoss


def _gradient_image(h=48, w=64):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 4 % 256, yy * 5 % 256, (xx + yy) * 3 % 256], -1).astype(np.uint8)


# ------------------------------------------------------------------ truncated files
@pytest.mark.parametrize("ext", [".jpg", ".png"])
@pytest.mark.parametrize("cut", [2, 0.5])
def test_truncated_image_is_refused_naming_the_file(tmp_path, ext, cut):
    """An interrupted download: libjpeg only warns and fills the rest with grey."""
    full = tmp_path / f"full{ext}"
    assert cv2.imwrite(str(full), _gradient_image())
    data = full.read_bytes()
    n = len(data) - cut if isinstance(cut, int) else int(len(data) * cut)
    part = tmp_path / f"part{ext}"
    part.write_bytes(data[:n])
    assert read_image(full).shape == (48, 64, 3)
    with pytest.raises(ValueError, match=r"part\.(jpg|png).*truncated"):
        read_image(part)


def test_truncated_label_is_refused_naming_the_file(tmp_path):
    lab = (np.arange(48 * 64).reshape(48, 64) % 3).astype(np.uint8)
    full = tmp_path / "lab.png"
    assert cv2.imwrite(str(full), lab)
    (tmp_path / "cut.png").write_bytes(full.read_bytes()[:-30])
    assert (read_label(full) == lab).all()
    with pytest.raises(ValueError, match=r"cut\.png.*truncated"):
        read_label(tmp_path / "cut.png")


def test_empty_image_file_is_named(tmp_path):
    (tmp_path / "zero.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"zero\.jpg.*empty"):
        read_image(tmp_path / "zero.jpg")


# ------------------------------------------------------------------ negative labels
def test_negative_label_values_are_refused_naming_the_file(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    assert cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((6, 7, 3), np.uint8))
    lab = np.zeros((6, 7), np.int16)
    lab[2, 3] = -1
    assert cv2.imwrite(str(tmp_path / "labels" / "a.tif"), lab)
    ds = SegFolder(tmp_path, 3)
    with pytest.raises(ValueError, match=r"labels.a\.tif: label values \[-1\]"):
        ds[0]


# ------------------------------------------------------------------ metrics
def test_confusion_matrix_refuses_fractional_and_nan_input():
    label = np.array([0, 1, 2, 1])
    with pytest.raises(ValueError, match=r"pred.*non-integral.*0\.4"):
        confusion_matrix(np.array([0.0, 1.0, 1.6, 0.4]), label, 3)
    with pytest.raises(ValueError, match=r"label.*non-integral"):
        confusion_matrix(label, np.array([0.0, 0.5, 2.0, 1.0]), 3)
    with pytest.raises(ValueError, match=r"pred.*NaN"):
        confusion_matrix(np.array([0.0, np.nan, 2.0, 1.0]), label, 3)
    # integral floats (a label stored as float) are class indices
    conf = confusion_matrix(np.array([0.0, 1.0, 2.0, 1.0]), label.astype(np.float32), 3)
    assert (conf == np.diag([1, 2, 1])).all()
    # 255.0 in a float label is still ignore_index
    assert confusion_matrix(np.array([0, 1.0]), np.array([0, 255.0]), 3).sum() == 1


@pytest.mark.parametrize("conf, match", [
    (np.ones((2, 3)), "square"),
    (np.ones(4), "square"),
    (np.array([[3, -1], [0, 2]]), "negative"),
    (np.array([[3, np.nan], [0, 2]]), "finite"),
])
def test_segmentation_scores_refuses_bad_matrices(conf, match):
    with pytest.raises(ValueError, match=match):
        segmentation_scores(conf)


# ------------------------------------------------------------------ transforms
@pytest.mark.parametrize("make, match", [
    (lambda: RandomCrop(0), "size"),
    (lambda: RandomCrop((8, -2)), "size"),
    (lambda: RandomScale((0.0, 1.5)), "scales"),
    (lambda: RandomScale((-1.0, 2.0)), "scales"),
    (lambda: RandomScale((2.0, 1.0)), "scales"),
    (lambda: RandomFlip(1.5), "p"),
])
def test_transform_arguments_are_validated(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("t", [RandomScale((0.5, 2.0)), RandomCrop(4), RandomFlip(1.0)],
                         ids=["scale", "crop", "flip"])
def test_transforms_refuse_image_and_label_of_different_sizes(t):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"(Scale|Crop|Flip): image is 9x8 but label is 8x8"):
        t(np.zeros((8, 9, 3), np.uint8), np.zeros((8, 8), np.int64), rng)


# ------------------------------------------------------------------ Panoptic-DeepLab void
@pytest.mark.parametrize("void", [255 * LABEL_DIVISOR, -1])
def test_panoptic_deeplab_loss_ignores_void_pixels(void):
    things = VARIANTS["scenes"].thing_ids
    h, w = 20, 24
    pan = np.full((2, h, w), 1 * LABEL_DIVISOR, np.int64)
    pan[:, 4:12, 5:14] = 4 * LABEL_DIVISOR + 1
    pan[:, 14:, :] = void                          # the bottom rows are unlabelled
    pan[1, 6:9, 6:9] = void                        # and a hole inside the instance
    is_void = (pan == void)[:, None]
    rng = np.random.default_rng(0)
    outs = {k: paddle.to_tensor(rng.normal(size=(2, c, h, w)).astype(np.float32), stop_gradient=False)
            for k, c in (("semantic", 7), ("center", 1), ("offset", 2))}
    loss_fn = PanopticDeepLabLoss(things, sigma=2.0)
    parts = loss_fn.parts(outs, pan)
    loss = sum(parts.values())
    assert all(np.isfinite(float(v)) for v in parts.values())
    loss.backward()
    for k, out in outs.items():
        g = out.grad.numpy()
        assert np.abs(g[np.broadcast_to(is_void, g.shape)]).max() == 0, k   # void: no gradient
        assert np.abs(g[np.broadcast_to(~is_void, g.shape)]).max() > 0, k
    # without void pixels nothing changes: same loss as before the fix on a clean map
    clean = np.where(pan == void, LABEL_DIVISOR, pan)
    assert np.isfinite(float(loss_fn(outs, clean)))


# ------------------------------------------------------------------ checkpoints
def _trainer(num_classes=7, optimizer="sgd"):
    from common.data import SyntheticScenes
    data = SyntheticScenes(2, 16, seed=0)
    return Trainer(build_model("tiny", num_classes, width=4, depth=1), data, num_classes=num_classes,
                   iters=1, batch_size=2, progress=False, optimizer=optimizer)


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage that is not a checkpoint" * 3])
def test_empty_or_corrupt_checkpoint_names_the_file(tmp_path, content):
    path = tmp_path / "broken.pdckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"broken\.pdckpt"):
        _trainer().resume(path)


def test_class_count_mismatch_names_parameter_and_shapes(tmp_path):
    t = _trainer(7)
    t.save(tmp_path / "seven.pdckpt")
    with pytest.raises(ValueError, match=r"seven\.pdckpt.*classifier\.weight.*\[7, 4, 1, 1\].*\[5, 4, 1, 1\]"):
        _trainer(5).resume(tmp_path / "seven.pdckpt")


def test_resuming_another_optimizer_is_refused(tmp_path):
    t = _trainer(optimizer="sgd")
    t.fit()
    t.save(tmp_path / "sgd.pdckpt")
    with pytest.raises(ValueError, match=r"sgd\.pdckpt.*Momentum.*Adam"):
        _trainer(optimizer="adam").resume(tmp_path / "sgd.pdckpt")
    _trainer(optimizer="sgd").resume(tmp_path / "sgd.pdckpt")      # the same optimiser is fine


def test_save_removes_temp_files_of_a_killed_save(tmp_path):
    path = tmp_path / "c.pdckpt"
    stale = tmp_path / "c.pdckpt.k3x9a_q1.tmp"           # what a save killed mid-write leaves
    stale.write_bytes(b"half a checkpoint")
    keep = [tmp_path / "other.pdckpt.ab12.tmp", tmp_path / "c.pdckpt.notes"]
    for p in keep:
        p.write_bytes(b"not ours")
    _trainer().save(path)
    assert sorted(os.listdir(tmp_path)) == sorted(["c.pdckpt"] + [p.name for p in keep])
