"""Shared by the Day 4 DeepLab ablations (``aspp_sum_vs_concat``, ``decoder_boundary``,
``crf``): one training run of a given model on the synthetic scenes, and its held-out scores.

Every variant of an experiment gets the same data (train split seed 0, val split seed 10000),
crops, optimiser, learning rate, iterations and seeds; only the model (or the
post-processing) differs. The seed sets the initialisation and the batch order.
"""
from __future__ import annotations

import numpy as np

from common import runtime
from common.data import SyntheticScenes
from common.data.transforms import train_transform
from common.engine import Trainer
from common.inference import predict_probs
from common.metrics import boundary_f_score, confusion_matrix, segmentation_scores

# Sizes of a full run (a few CPU-minutes per experiment) and of a FAST (CI) run.
SIZES = {
    False: dict(image_size=96, train_scenes=256, val_scenes=32, crop=64, iters=150, batch_size=8,
                lr=5e-3, width=8),
    True: dict(image_size=48, train_scenes=8, val_scenes=2, crop=32, iters=2, batch_size=2,
               lr=5e-3, width=4),
}
BOUNDARY_TOLERANCE = 2      # pixels, as common.metrics.boundary_f_score's default


def sizes(fast):
    """The run sizes of FAST (True) or full (False) mode, as a new dict."""
    return dict(SIZES[bool(fast)])


def data(s):
    """(train, val) synthetic scenes with random scale (0.75-1.5), crop and flip in training."""
    train = SyntheticScenes(s["train_scenes"], s["image_size"], seed=0,
                            transform=train_transform(s["crop"]))
    val = SyntheticScenes(s["val_scenes"], s["image_size"], seed=10_000)
    return train, val


def train(make_model, seed, s, loss_fn=None, progress=False):
    """Train ``make_model(num_classes)`` (built after seeding) for ``s['iters']`` steps.

    Args:
        make_model: function of the class count returning a fresh model.
        seed: seeds Paddle/NumPy before the model is built, and the Trainer's batch order.
        s: sizes (``sizes(fast)``).
        loss_fn: the Trainer's loss (default cross-entropy).
        progress: show the Trainer's progress bar (a notebook rerunning one seed does).

    Returns:
        (trained model in eval mode, val dataset).
    """
    tr, val = data(s)
    runtime.seed_everything(seed)
    model = make_model(tr.num_classes)
    Trainer(model, tr, val, iters=s["iters"], batch_size=s["batch_size"], lr=s["lr"], optimizer="adam",
            seed=seed, progress=progress, loss_fn=loss_fn).fit()
    model.eval()
    return model, val


def untrained(build, seed, fast):
    """The held-out ``scores`` of ``build(num_classes, width)`` as initialised for ``seed``, before
    any step (the baseline a lesson check compares the trained model with), and the held-out
    labels (N, H, W), for the floors."""
    s = sizes(fast)
    _, val = data(s)
    runtime.seed_everything(seed)
    model = build(val.num_classes, s["width"])
    model.eval()
    probs, labels, _ = probs_and_labels(model, val)
    return scores(probs.argmax(1), labels, val.classes), labels


def probs_and_labels(model, val):
    """Softmax probabilities (N, K, H, W) of ``model`` on ``val``, its labels (N, H, W) and
    its uint8 images (N, H, W, 3)."""
    x = np.stack([val[i][0] for i in range(len(val))])
    probs = np.concatenate([predict_probs(model, x[i:i + 16]).numpy() for i in range(0, len(x), 16)])
    return probs, np.stack(val.labels).astype(np.int64), np.stack(val.images)


def scores(pred, labels, classes):
    """mIoU, boundary F (``BOUNDARY_TOLERANCE`` px) and the IoU of every class (``iou_<name>``)."""
    k = len(classes)
    seg = segmentation_scores(confusion_matrix(pred, labels, k))
    out = dict(miou=float(seg["miou"]),
               boundary_f=float(boundary_f_score(pred, labels, k, tolerance=BOUNDARY_TOLERANCE)["f"]))
    out.update({f"iou_{c}": float(v) for c, v in zip(classes, seg["iou"])})
    return out


def variant(build, fast, progress=False):
    """One variant of a DeepLab ablation: ``fn(seed)`` trains ``build(num_classes, width)`` at
    the sizes of ``fast`` (with a progress bar if ``progress``) and returns its ``scores`` on
    the held-out scenes."""
    def fn(seed):
        s = sizes(fast)
        model, val = train(lambda k: build(k, s["width"]), seed, s, progress=progress)
        probs, labels, _ = probs_and_labels(model, val)
        return scores(probs.argmax(1), labels, val.classes)
    return fn
