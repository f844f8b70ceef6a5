"""Course weights of the four Day 4 DeepLabs, trained once by a committed command.

At the CPU budget of a live notebook (a few hundred steps) the DeepLabs find the objects of
the synthetic scenes but not their shape: they separate "a thing" from stuff (thing-vs-stuff
IoU ~0.7-0.85 after 300 steps) and then confuse disc, square and triangle. Telling the
shapes apart takes a longer schedule; this module is the committed command that trains it:

    python -m common.weights.deeplab [NAME ...]

(``CONFIGS`` below: model kwargs, crops, iterations, learning rate, class weights, seed).
Each run writes ``weights/day4/<name>.pdparams`` (float16) and ``<name>.json`` beside it with
the command, the code version (git sha), the seed, the config, the training seconds and the
held-out per-class IoU; ``load(name)`` rebuilds the model and loads them as float32.
Status: not yet run for the shipped course (the shared CPU of the session that wrote it was
too busy), so the notebooks train live only and no weights are committed; whether 1500
steps reach the per-class targets is unmeasured.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights" / "day4"
# the rare, small triangles (2% of pixels) and the other things (4% each) weigh more
CLASS_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 4.0)
COMMON = dict(image_size=96, train_scenes=256, val_scenes=32, crop=64, batch_size=8, iters=1500,
              seed=0, class_weights=CLASS_WEIGHTS)
# Rates: the papers' rates are for a 65x65 (OS 8) or 33x33 (OS 16) layer4 map; ours is
# 8x8-12x12, so they are divided by 6 (the same fraction of the map).
CONFIGS = {
    "deeplabv1": dict(COMMON, kwargs=dict(width=8, fc6_rate=2), lr=2e-3),
    "deeplabv2": dict(COMMON, kwargs=dict(depth=18, width=8, rates=(1, 2, 3, 4)), lr=5e-3),
    "deeplabv3": dict(COMMON, kwargs=dict(depth=18, width=8, output_stride=8, rates=(1, 2, 3)), lr=5e-3),
    "deeplabv3plus": dict(COMMON, kwargs=dict(width=8, middle_blocks=1, output_stride=8, rates=(1, 2, 3)),
                          lr=5e-3),
}


def train(name, progress=True):
    """Train ``name`` with ``CONFIGS[name]``; returns (model in eval mode, seconds)."""
    from common import runtime
    from common.data import SyntheticScenes
    from common.data.transforms import Compose, RandomCrop, RandomFlip, RandomScale
    from common.engine import Trainer
    from common.losses import SegLoss
    from common.models import build_model

    c = CONFIGS[name]
    aug = Compose([RandomScale((0.75, 1.5)), RandomCrop(c["crop"]), RandomFlip()])
    tr = SyntheticScenes(c["train_scenes"], c["image_size"], seed=0, transform=aug)
    runtime.seed_everything(c["seed"])
    model = build_model(name, tr.num_classes, **c["kwargs"])
    # V2's MSC: a loss on the fused map and on each scale, equally weighted (the paper)
    loss = SegLoss(weight=list(c["class_weights"]), aux_weight=1.0)
    t = Trainer(model, tr, None, iters=c["iters"], batch_size=c["batch_size"], lr=c["lr"], optimizer="adam",
                seed=c["seed"], loss_fn=loss, progress=progress)
    start = time.perf_counter()
    t.fit()
    model.eval()
    return model, time.perf_counter() - start


def val_scenes(name):
    """The held-out scenes the weights are scored on (val seed 10000)."""
    from common.data import SyntheticScenes

    c = CONFIGS[name]
    return SyntheticScenes(c["val_scenes"], c["image_size"], seed=10_000)


def per_class_iou(model, val):
    """Held-out IoU of every class of ``val`` ({class name: IoU}) and the mIoU."""
    from common.inference import predict
    from common.metrics import confusion_matrix, segmentation_scores

    x = np.stack([val[i][0] for i in range(len(val))])
    pred = np.concatenate([predict(model, x[i:i + 16]) for i in range(0, len(x), 16)])
    s = segmentation_scores(confusion_matrix(pred, np.stack(val.labels).astype(np.int64), val.num_classes))
    return {c: round(float(v), 4) for c, v in zip(val.classes, s["iou"])}, round(float(s["miou"]), 4)


def save(name, model, seconds, out_dir=WEIGHTS_DIR):
    """Write ``<name>.pdparams`` (float16) and ``<name>.json`` (command, code version, seed,
    config, seconds, held-out per-class IoU of the float16 weights)."""
    from common.experiments import code_version
    from common.models.pretrained import save_float16

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_float16(model.state_dict(), out_dir / f"{name}.pdparams")
    reloaded = load(name, out_dir, check_meta=False)
    iou, miou = per_class_iou(reloaded, val_scenes(name))
    c = CONFIGS[name]
    meta = dict(name=name, command=f"python -m common.weights.deeplab {name}",
                code_version=code_version(), seed=c["seed"], seconds=round(seconds, 1),
                config={k: (list(v) if isinstance(v, tuple) else v) for k, v in c.items()},
                dtype="float16", val=dict(scenes=c["val_scenes"], seed=10_000, iou=iou, miou=miou))
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=1, default=list) + "\n")
    return meta


def load(name, weights_dir=WEIGHTS_DIR, check_meta=True):
    """Rebuild DeepLab ``name`` with its ``CONFIGS`` kwargs and load the shipped float16
    weights as float32 (eval mode); ``model.config`` is the JSON written beside them.

    Raises:
        FileNotFoundError: naming the missing file and the command that writes it.
    """
    from common.weights import load_shipped

    if name not in CONFIGS:
        raise KeyError(f"no course weights for {name!r}; known: {sorted(CONFIGS)}")
    return load_shipped(name, CONFIGS[name]["kwargs"], weights_dir, name,
                        f"python -m common.weights.deeplab {name}", check_meta)


def main(names=None):
    """Train, save and score the named models (default: all four)."""
    for name in names or list(CONFIGS):
        model, seconds = train(name)
        meta = save(name, model, seconds)
        print(name, f"{seconds:.0f}s", "mIoU", meta["val"]["miou"], meta["val"]["iou"], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
