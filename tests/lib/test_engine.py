"""Trainer: it learns, resumes exactly, refuses foreign checkpoints, and data parallel
over two processes equals one process on the same global batch."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import paddle.nn as nn
import pytest

from common.data import SyntheticScenes, train_transform
from common.engine import Trainer
from common.models import build_model
from common.models.tiny import TinySegNet


class DropNet(TinySegNet):
    """The tiny net plus dropout, so that resuming must also reproduce the dropout noise."""

    def __init__(self, num_classes):
        super().__init__(num_classes, width=8, depth=2)
        self.drop = nn.Dropout2D(0.3)

    def forward(self, x):
        return self.classifier(self.drop(self.features(x)))


def _weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_trainer_learns_synthetic_scenes():
    train = SyntheticScenes(24, 48, seed=0, transform=train_transform(48))
    val = SyntheticScenes(8, 48, seed=10_000)
    paddle.seed(0)
    model = build_model("tiny", train.num_classes, width=16, depth=4)
    trainer = Trainer(model, train, val, iters=60, batch_size=4, lr=0.01, optimizer="adam",
                      progress=False)
    before = trainer.evaluate()["miou"]
    hist = trainer.fit()
    after = hist["miou"][-1]
    assert np.mean(hist["loss"][-10:]) < 0.6 * np.mean(hist["loss"][:5])
    # 7 classes: a constant prediction scores at most ~0.1 mIoU
    assert after > 0.3 and after > before + 0.15, (before, after)


def _interrupting_loss(stop_at, trainer_ref):
    from common.losses import SegLoss
    base = SegLoss()

    def loss(out, label):
        if trainer_ref and trainer_ref[0].it == stop_at:
            raise KeyboardInterrupt
        return base(out, label)
    return loss


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_gives_identical_weights(tmp_path, optimizer):
    data = SyntheticScenes(6, 32, seed=0, transform=train_transform(32))
    kw = dict(iters=9, batch_size=2, lr=0.02, progress=False, ckpt_every=3, optimizer=optimizer)

    paddle.seed(1)
    straight = DropNet(7)
    Trainer(straight, data, **kw).fit()

    paddle.seed(1)
    ref = []
    first = Trainer(DropNet(7), data, loss_fn=_interrupting_loss(5, ref),
                    ckpt_path=tmp_path / "run.pdckpt", **kw)
    ref.append(first)
    with pytest.raises(KeyboardInterrupt):
        first.fit()                          # dies at iteration 5; last checkpoint at 3

    paddle.seed(123)                         # a fresh process: other initial weights
    resumed_model = DropNet(7)
    resumed = Trainer(resumed_model, data, **kw).resume(tmp_path / "run.pdckpt")
    assert resumed.it == 3
    resumed.fit()
    a, b = _weights(straight), _weights(resumed_model)
    assert max(np.abs(a[k] - b[k]).max() for k in a) == 0.0
    assert resumed.history["iter"] == list(range(1, 10))


class DictNet(nn.Layer):
    """A loss-dict model (the contract of Mask R-CNN, SOLO, UPSNet): ``model(images, targets)``
    returns named losses. Dropout and a target drawn by the dataset's target_transform make
    resuming reproduce both the step noise and the pipeline's randomness."""

    task = "instance"

    def __init__(self, num_classes=7):
        super().__init__()
        self.net = TinySegNet(num_classes, width=8, depth=2)
        self.drop = nn.Dropout2D(0.3)
        self.box = nn.Linear(8, 4)
        self.stop_at, self.trainer = None, None

    def forward(self, images, targets=None):
        if self.trainer is not None and self.trainer.it == self.stop_at:
            raise KeyboardInterrupt
        feats = self.drop(self.net.features(images))
        logits = self.net.classifier(feats)
        if targets is None:
            return logits
        sem = paddle.stack([t["semantic"] for t in targets])
        boxes = paddle.concat([t["boxes"][:1] for t in targets]) / 48
        noise = paddle.concat([t["noise"] for t in targets])
        pred = self.box(feats.mean([2, 3]))
        return dict(loss_sem=paddle.nn.functional.cross_entropy(logits.transpose([0, 2, 3, 1]), sem[..., None]),
                    loss_box=((pred - boxes) ** 2).mean(), loss_noise=(pred.mean(1) * noise).mean() ** 2)


def _noise(target, rng):
    return dict(target, noise=rng.standard_normal(1).astype(np.float32))


def test_poly_lr_with_warmup():
    from common.engine import poly_lr

    assert poly_lr(0.1, 0, 10) == 0.1 and poly_lr(0.1, 5, 10) == pytest.approx(0.1 * 0.5 ** 0.9)
    # linear warm-up over 4 iterations, then the poly decay alone
    assert [poly_lr(1.0, it, 100, warmup=4) / poly_lr(1.0, it, 100) for it in range(6)] == \
        pytest.approx([0.25, 0.5, 0.75, 1, 1, 1])
    data = SyntheticScenes(4, 32, seed=0)
    t = Trainer(build_model("tiny", 7, width=8), data, iters=6, batch_size=2, lr=0.1, warmup=3,
                progress=False)
    t.fit()
    assert t.history["lr"] == pytest.approx([poly_lr(0.1, it, 6, 3) for it in range(6)])
    assert t.history["lr"][0] == pytest.approx(0.1 / 3)
    with pytest.raises(ValueError, match="warmup"):
        Trainer(build_model("tiny", 7, width=8), data, iters=6, batch_size=2, warmup=-1)


def test_loss_dict_model_resumes_identically(tmp_path):
    from common.data.instances import SceneInstances

    data = SceneInstances(6, 48, seed=0, flip=0.5, target_transform=_noise)
    kw = dict(iters=8, batch_size=2, lr=0.01, optimizer="adam", warmup=3, clip_norm=1.0,
              progress=False, ckpt_every=3)
    paddle.seed(1)
    straight_model = DictNet()
    straight = Trainer(straight_model, data, **kw)
    straight.fit()
    assert set(straight.history) >= {"loss_sem", "loss_box", "loss_noise"}
    terms = np.array([straight.history[k] for k in ("loss_sem", "loss_box", "loss_noise")])
    np.testing.assert_allclose(terms.sum(0), straight.history["loss"], rtol=1e-5)

    paddle.seed(1)
    first_model = DictNet()
    first = Trainer(first_model, data, ckpt_path=tmp_path / "d.pdckpt", **kw)
    first_model.stop_at, first_model.trainer = 5, first
    with pytest.raises(KeyboardInterrupt):
        first.fit()                                   # dies at iteration 5; checkpoint at 3

    paddle.seed(99)
    resumed_model = DictNet()
    resumed = Trainer(resumed_model, data, **kw).resume(tmp_path / "d.pdckpt")
    assert resumed.it == 3 and len(resumed.history["loss_box"]) == 3
    resumed.fit()
    a, b = _weights(straight_model), _weights(resumed_model)
    assert max(np.abs(a[k] - b[k]).max() for k in a) == 0.0
    for k in ("loss", "loss_sem", "loss_box", "loss_noise", "lr"):
        assert resumed.history[k] == straight.history[k], k


def test_pipeline_targets_in_workers_train_identically():
    """Targets built by DataLoader workers (num_workers=2), zero-size arrays included, are the
    ones built in the main process: the same losses step by step."""
    from common.data.instances import SceneInstances

    def noise_and_empty(target, rng):
        # zero-size arrays (an image without objects, a level without positive cells) cannot
        # cross Paddle's shared-memory transport from the workers
        return dict(_noise(target, rng), cells=np.zeros((0, 2), np.int64))

    data = SceneInstances(4, 32, seed=0, flip=0.5, target_transform=noise_and_empty)
    hists = []
    for workers in (0, 2):
        paddle.seed(1)
        hists.append(Trainer(DictNet(), data, iters=3, batch_size=2, lr=0.01, optimizer="adam",
                             num_workers=workers, progress=False).fit())
    for k in ("loss", "loss_sem", "loss_box", "loss_noise"):
        assert hists[0][k] == hists[1][k], k


def test_loss_dict_model_must_return_a_dict():
    from common.data.instances import SceneInstances

    class Bad(DictNet):
        def forward(self, images, targets=None):
            return super().forward(images, targets)["loss_sem"]

    data = SceneInstances(2, 32, seed=0, target_transform=_noise)
    with pytest.raises(TypeError, match="dict of loss tensors"):
        Trainer(Bad(), data, iters=1, batch_size=2, progress=False).fit()


def test_resume_refuses_checkpoint_of_another_model(tmp_path):
    data = SyntheticScenes(2, 32, seed=0)
    t = Trainer(build_model("tiny", 7, width=8), data, iters=1, batch_size=2, progress=False)
    t.save(tmp_path / "tiny.pdckpt")
    other = Trainer(DropNet(7), data, iters=1, batch_size=2, progress=False)
    with pytest.raises(ValueError, match=r"tiny\.pdckpt holds a TinySegNet checkpoint"):
        other.resume(tmp_path / "tiny.pdckpt")
    with pytest.raises(FileNotFoundError, match="missing.pdckpt"):
        other.resume(tmp_path / "missing.pdckpt")


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    data = SyntheticScenes(2, 32, seed=0)
    t = Trainer(build_model("tiny", 7, width=8), data, iters=1, batch_size=2, progress=False)
    path = tmp_path / "c.pdckpt"
    t.save(path)
    before = path.read_bytes()

    def broken(obj, p):
        Path(p).write_bytes(b"half")
        raise OSError("disk full")
    monkeypatch.setattr(paddle, "save", broken)
    with pytest.raises(OSError):
        t.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.pdckpt"]


class _CollatedScenes(SyntheticScenes):
    """A semantic dataset with a collate of its own (stacked images and label maps)."""

    def collate(self, items):
        return np.stack([i for i, _ in items]), np.stack([lab for _, lab in items]).astype(np.int64)


def test_the_task_decides_training_and_scores_not_the_collate():
    """One decision, read from the model (or given): a semantic dataset with its own collate is
    trained through loss_fn and scored by mIoU; the instance task needs a collate; a panoptic
    model is scored outside the Trainer."""
    from common.data.instances import SceneInstances

    data = _CollatedScenes(4, 32, seed=0)
    t = Trainer(build_model("tiny", 7, preset="tiny"), data, data, iters=2, batch_size=2, progress=False)
    assert t.task == "semantic" and t.collate is not None
    hist = t.fit()
    assert {"miou", "macc"} <= set(hist) and "ap" not in hist and len(hist["loss"]) == 2
    scenes = SceneInstances(2, 32, seed=0)
    assert Trainer(DictNet(), scenes, iters=1, batch_size=2).task == "instance"
    mislabelled = DictNet()
    mislabelled.task = "semantic"                                # the caller's word wins
    assert Trainer(mislabelled, scenes, iters=1, batch_size=2, task="instance").task == "instance"
    with pytest.raises(ValueError, match="has no .collate"):
        Trainer(DictNet(), SyntheticScenes(2, 32, seed=0), iters=1, batch_size=2)
    with pytest.raises(ValueError, match="task must be one of"):
        Trainer(DropNet(7), data, iters=1, batch_size=2, task="detection")
    pdl = build_model("panoptic_deeplab", 7, preset="tiny", thing_ids=(4, 5, 6))
    assert Trainer(pdl, data, iters=1, batch_size=2).task == "panoptic"
    with pytest.raises(ValueError, match="scored by PQ"):
        Trainer(pdl, data, data, iters=1, batch_size=2)


def test_predict_window_scales_flip_shapes():
    data = SyntheticScenes(2, 40, seed=0)
    t = Trainer(build_model("tiny", 7, width=8), data, iters=1, batch_size=2, progress=False)
    x = np.stack([data[i][0] for i in range(2)])
    plain = t.predict_probs(x)
    assert tuple(plain.shape) == (2, 7, 40, 40)
    # a window covering the whole image equals the plain forward pass
    np.testing.assert_allclose(t.predict_probs(x, window=(40, 40)).numpy(), plain.numpy(), atol=1e-6)
    tiled = t.predict_probs(x, window=(24, 16))
    np.testing.assert_allclose(tiled.sum(1).numpy(), 1.0, atol=1e-5)
    assert t.predict(x, scales=(0.75, 1.0, 1.25), flip=True).shape == (2, 40, 40)


@pytest.fixture(scope="module")
def one_and_two_processes(tmp_path_factory):
    """tests/lib/dp_worker.py alone and as two gloo processes (half the batch each):
    {"plain" | "bn": (one process's npz, two processes')}."""
    worker = Path(__file__).with_name("dp_worker.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    subprocess.run([sys.executable, str(worker), str(one)], check=True, env=env, capture_output=True, timeout=120)
    subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
                    "--backend", "gloo", "--log_dir", str(two / "log"), str(worker), str(two)],
                   check=True, env=env, capture_output=True, timeout=180)
    runs = {name: (np.load(one / f"{name}.npz"), np.load(two / f"{name}.npz")) for name in ("plain", "bn")}
    assert all(int(a["world"]) == 1 and int(b["world"]) == 2 for a, b in runs.values())
    return runs


def _trained(npz):
    """{name: array} of the weights and running statistics after training."""
    return {k: npz[k] for k in npz if k not in ("world", "sync") and not k.startswith("start:")}


@pytest.mark.slow          # three Paddle processes, two of them under paddle.distributed.launch (shared below)
def test_two_process_data_parallel_equals_one_process(one_and_two_processes):
    one, two = one_and_two_processes["plain"]
    trained = _trained(one)
    assert max(np.abs(trained[k] - two[k]).max() for k in trained) < 1e-5
    assert max(np.abs(trained[k] - one["start:" + k]).max() for k in trained) > 1e-3   # trained weights compared


@pytest.mark.slow
def test_two_process_batchnorm_equals_one_process(one_and_two_processes):
    """BatchNorm under data parallel: the Trainer synchronises it, so two processes with
    two images each train what one process trains on the four (weights and running
    statistics; without the synchronisation they differ by 0.05)."""
    one, two = one_and_two_processes["bn"]
    assert str(one["sync"]) == "None" and str(two["sync"]) == "AllReduceBatchNorm"   # CPU: no Paddle kernel
    trained = _trained(one)
    assert any(k.endswith("_variance") for k in trained)
    assert max(np.abs(trained[k] - two[k]).max() for k in trained) < 1e-5
    assert max(np.abs(trained[k] - one["start:" + k]).max() for k in trained) > 1e-3
