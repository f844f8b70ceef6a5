"""Day 3 ablation: what the pyramid pooling module buys. PSPNet on the same dilated ResNet-18
(output stride 8), head, data, optimiser, iterations and seeds, with and without the PSP module
(``psp=False``: the head sees c5 alone). Scored on the held-out *context* scenes, where a hull is
a boat on water and a car on a road: mIoU, boat/car IoU, and ``swap``, the fraction of hull pixels
(boat or car, predicted as either) given the other hull class, the error only context can fix."""
from __future__ import annotations

import numpy as np

from common import runtime
from common.course import experiments
from common.data import synthetic_splits, train_transform
from common.engine import Trainer
from common.inference import predict
from common.metrics import confusion_matrix, segmentation_scores
from common.models import build_model

NAME = "psp_pyramid"
SIZES = {
    False: dict(image_size=64, train_scenes=256, val_scenes=32, iters=300, batch_size=8, lr=2e-3, width=8),
    True: dict(image_size=64, train_scenes=16, val_scenes=4, iters=3, batch_size=4, lr=3e-3, width=8),
}


def _train(seed, psp, image_size, train_scenes, val_scenes, iters, batch_size, lr, width):
    budget = runtime.Budget("EXP", image_size, train_scenes, val_scenes, iters, batch_size, width, iters)
    train, val = synthetic_splits(budget, "context", train_transform=train_transform(image_size))
    runtime.seed_everything(seed)
    model = build_model("pspnet", train.num_classes, depth=18, width=width, output_stride=8, psp=psp)
    Trainer(model, train, val, iters=iters, batch_size=batch_size, lr=lr, optimizer="adam", seed=seed,
            progress=False).fit()
    model.eval()
    x = np.stack([val[i][0] for i in range(len(val))])
    y = np.stack([val[i][1] for i in range(len(val))])
    pred = np.concatenate([predict(model, x[s:s + 16]) for s in range(0, len(x), 16)])
    conf = confusion_matrix(pred, y, train.num_classes)
    scores = segmentation_scores(conf)
    boat, car = train.classes.index("boat"), train.classes.index("car")
    right = conf[boat, boat] + conf[car, car]
    swapped = conf[boat, car] + conf[car, boat]
    out = dict(miou=scores["miou"], swap=float(swapped / max(right + swapped, 1)))
    out.update({f"iou_{c}": float(v) for c, v in zip(train.classes, scores["iou"])})
    return out


def main(fast=False):
    """Run PSPNet with and without the pyramid over seeds 0, 1, 2 (one in FAST mode)."""
    s = SIZES[bool(fast)]
    variants = {"without PSP": lambda seed: _train(seed, False, **s),
                "with PSP": lambda seed: _train(seed, True, **s)}
    return experiments.run(NAME, variants, seeds=(0,) if fast else (0, 1, 2), fast=fast,
                           meta=dict(sizes=s, model="pspnet depth=18 output_stride=8 (dilated)",
                                     changed="psp=True / psp=False", data="synthetic 'context'"))
