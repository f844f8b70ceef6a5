"""Course weights of Day 2's FCN-8s, trained once for longer than a live notebook can.

In the notebook's short live run (100 steps per model) the FCNs learn the four stuff classes
and find the objects but do not tell disc, square and triangle apart. The cause is the number of
steps (plus the rarity of triangles, 1.9 % of the pixels, which the class weights address): the
same recipe trained for 1200 steps learns every class. This module is the command that trains it:

    OMP_NUM_THREADS=1 python -m common.weights.fcn

It writes ``weights/day2/fcn8s.pdparams`` (float16, about 1.3 MB) and ``fcn8s.json`` beside it
with the command, the code version, the seed, the recipe, the training seconds and the held-out
per-class IoU of the float16 weights; ``load()`` rebuilds the model and loads them as float32.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights" / "day2"
NAME = "fcn8s"
# The notebook's model and data; class weights sqrt(f_max / f_c) of the training pixels, rounded.
RECIPE = dict(model=dict(width=8, fc_channels=128, batch_norm=True, dropout=0.0), image_size=96,
              train_scenes=256, val_scenes=32, augment="train_transform(96)", iters=1200, batch_size=8,
              lr=3e-3, optimizer="adam", class_weights=[1, 1.2, 1.1, 1.1, 2.6, 2.6, 3.8], seed=0)


def _splits():
    from common import runtime
    from common.data import synthetic_splits, train_transform

    r = RECIPE
    budget = runtime.Budget("CPU", r["image_size"], r["train_scenes"], r["val_scenes"], r["iters"],
                            r["batch_size"], 16, r["iters"])
    return synthetic_splits(budget, train_transform=train_transform(r["image_size"]))


def train(progress=True):
    """Train FCN-8s with ``RECIPE``.

    Args:
        progress: show the training progress bar.

    Returns:
        (model in eval mode, training seconds).
    """
    import paddle

    from common import runtime
    from common.engine import Trainer
    from common.losses import SegLoss
    from common.models import build_model

    r = RECIPE
    runtime.seed_everything(r["seed"])
    train_set, val = _splits()
    model = build_model(NAME, train_set.num_classes, **r["model"])
    loss = SegLoss(weight=paddle.to_tensor(np.array(r["class_weights"], np.float32)))
    t = Trainer(model, train_set, val, iters=r["iters"], batch_size=r["batch_size"], lr=r["lr"],
                optimizer=r["optimizer"], eval_every=r["iters"], progress=progress, loss_fn=loss)
    start = time.perf_counter()
    t.fit()
    model.eval()
    return model, time.perf_counter() - start


def per_class_iou(model):
    """Held-out scores of ``model`` on the recipe's val scenes (32 scenes, 96 x 96, seed 10000).

    Args:
        model: a semantic model of the 7 scene classes (eval mode).

    Returns:
        ({class name: IoU rounded to 4 decimals}, mIoU rounded to 4 decimals).
    """
    from common.inference import predict
    from common.metrics import confusion_matrix, segmentation_scores

    _, val = _splits()
    x = np.stack([val[i][0] for i in range(len(val))])
    pred = np.concatenate([predict(model, x[i:i + 16]) for i in range(0, len(x), 16)])
    s = segmentation_scores(confusion_matrix(pred, np.stack(val.labels).astype(np.int64), val.num_classes))
    return {c: round(float(v), 4) for c, v in zip(val.classes, s["iou"])}, round(float(s["miou"]), 4)


def save(state, seconds, out_dir=WEIGHTS_DIR, note=None):
    """Write ``fcn8s.pdparams`` (float16) from a state dict and ``fcn8s.json`` (command, code
    version, seed, recipe, seconds, held-out per-class IoU of the float16 weights).

    Args:
        state: the FCN-8s state dict (float32 tensors or arrays).
        seconds: training time to record.
        out_dir: destination folder.
        note: optional remark stored in the JSON.

    Returns:
        the metadata dict written to the JSON.
    """
    from common.experiments import code_version
    from common.models.pretrained import save_float16

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_float16(state, out_dir / f"{NAME}.pdparams")
    iou, miou = per_class_iou(load(out_dir, check_meta=False))
    meta = dict(name=NAME, command="OMP_NUM_THREADS=1 python -m common.weights.fcn",
                code_version=code_version(), seed=RECIPE["seed"], seconds=round(seconds, 1), recipe=RECIPE,
                dtype="float16", val=dict(scenes=RECIPE["val_scenes"], seed=10_000, iou=iou, miou=miou))
    if note:
        meta["note"] = note
    (out_dir / f"{NAME}.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def load(weights_dir=WEIGHTS_DIR, check_meta=True):
    """FCN-8s with the shipped float16 weights loaded as float32, in eval mode; ``model.config``
    is the JSON written beside them.

    Args:
        weights_dir: folder of ``fcn8s.pdparams`` and ``fcn8s.json``.
        check_meta: require the JSON too.

    Returns:
        the model.

    Raises:
        FileNotFoundError: naming the missing file and the command that writes it.
    """
    from common.weights import load_shipped

    return load_shipped(NAME, RECIPE["model"], weights_dir, NAME, "python -m common.weights.fcn", check_meta)


def main():
    """Train, save and score the course's FCN-8s."""
    model, seconds = train()
    meta = save(model.state_dict(), seconds)
    print(NAME, f"{seconds:.0f}s", "mIoU", meta["val"]["miou"], meta["val"]["iou"], flush=True)


if __name__ == "__main__":
    main()
