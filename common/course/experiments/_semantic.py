"""Shared by the semantic-segmentation ablations: train one model on the synthetic scenes with
fixed sizes and one seed, and score it on held-out scenes (mIoU, per-class IoU, boundary F)."""
from __future__ import annotations

import numpy as np

from common import runtime
from common.data import synthetic_splits, train_transform
from common.engine import Trainer
from common.inference import predict
from common.losses import SegLoss
from common.metrics import boundary_f_score, confusion_matrix, segmentation_scores
from common.models import build_model


def class_weights(labels, num_classes, ignore_index=255):
    """Cross-entropy class weights ``sqrt(f_max / f_c)`` from the pixel frequencies ``f`` of
    ``labels`` (a list of label maps): 1 for the most frequent class, about 3.8 for the
    triangles (1.9 % of the pixels against the sky's 28 %). A class absent from the labels gets 1.

    Args:
        labels: iterable of integer label maps.
        num_classes: K.
        ignore_index: label value not counted.

    Returns:
        float32 array (K,).
    """
    counts = np.zeros(num_classes, np.float64)
    for lab in labels:
        lab = np.asarray(lab).ravel()
        counts += np.bincount(lab[lab != ignore_index], minlength=num_classes)[:num_classes]
    w = np.ones(num_classes)
    seen = counts > 0
    w[seen] = np.sqrt(counts[seen].max() / counts[seen])
    return w.astype(np.float32)


def train_and_score(model_name, seed, *, image_size, train_scenes, val_scenes, iters, batch_size,
                    lr, variant="scenes", optimizer="adam", warmup=0, augment=True, tolerance=2,
                    per_class=True, per_class_boundary=False, balanced=True, **model_kw):
    """Train ``build_model(model_name, K, **model_kw)`` from seed ``seed`` and score it.

    The seed sets the initialisation and the batch order; the scenes are the same for every
    seed (train split seed 0, val split 10000), so only the model and its training vary.

    Args:
        model_name: a registered model name.
        seed: the run's seed.
        image_size, train_scenes, val_scenes, iters, batch_size, lr, optimizer, warmup: sizes
            and optimiser of the run (poly decay, as every notebook).
        variant: synthetic variant ('scenes' or 'context').
        augment: the course's training augmentation (scale, crop, flip).
        tolerance: boundary F matching distance in pixels.
        per_class: also return ``iou_<class>`` for every class.
        per_class_boundary: also return ``bf_<class>``, each class's boundary F (NaN where the
            class has no boundary in the labels or the prediction).
        balanced: weight the cross-entropy by ``class_weights`` of the training labels.
        **model_kw: keywords of the model.

    Returns:
        dict ``miou``, ``boundary_f`` and, with ``per_class``, ``iou_<class>`` (with
        ``per_class_boundary``, ``bf_<class>``).
    """
    budget = runtime.Budget("EXP", image_size, train_scenes, val_scenes, iters, batch_size, 0, iters)
    train, val = synthetic_splits(budget, variant,
                                  train_transform=train_transform(image_size) if augment else None)
    runtime.seed_everything(seed)
    model = build_model(model_name, train.num_classes, **model_kw)
    loss = SegLoss(weight=class_weights(train.labels, train.num_classes)) if balanced else None
    trainer = Trainer(model, train, val, iters=iters, batch_size=batch_size, lr=lr, optimizer=optimizer,
                      warmup=warmup, seed=seed, progress=False, loss_fn=loss)
    trainer.fit()
    model.eval()
    x = np.stack([val[i][0] for i in range(len(val))])
    y = np.stack([val[i][1] for i in range(len(val))])
    pred = np.concatenate([predict(model, x[s:s + 16]) for s in range(0, len(x), 16)])
    scores = segmentation_scores(confusion_matrix(pred, y, train.num_classes))
    boundary = boundary_f_score(pred, y, train.num_classes, tolerance=tolerance)
    out = dict(miou=scores["miou"], boundary_f=boundary["f"])
    if per_class:
        out.update({f"iou_{c}": float(v) for c, v in zip(train.classes, scores["iou"])})
    if per_class_boundary:
        out.update({f"bf_{c}": float(v) for c, v in zip(train.classes, boundary["per_class"])})
    return out
