"""Day 5 ablation: does a graph context unit (GCU, GloRe, GINet) help the same network?

Every variant is ``ContextNet`` with the same stem-only ResNet-18 backbone, 1x1 reduce and
head convs, data, optimiser and iterations; only the unit between reduce and head differs
(``IdentityUnit`` for the baseline). Two scene designs with the same hulls and classes:
``context`` (every scene holds water and road: a hull's class follows its own surroundings,
local context) and ``harbour_street`` (a scene is all water or all road: the whole image
decides, global context). ``swap`` is the fraction of hull pixels, among those predicted
as a hull, given the *other* hull class: the error only context can fix (0.5 = chance).

Run: ``make experiments EXPERIMENTS=context_units`` (``python -m common.course.experiments context_units``).
"""
from __future__ import annotations

import numpy as np
import paddle

from common.course import weights
from common.course.experiments import run
from common.data import synthetic_splits, train_transform
from common.engine import Trainer
from common.losses import ContextLoss
from common.metrics import SegMetric
from common.models import build_model
from common.models.graph import CONTEXT_MODELS
from common.runtime import Budget

NAME = "context_units"


def context_experiment(name, budget, seed=0, progress=True, variant="context", iters=None,
                       fit=True, **model_kw):
    """Train ``name`` on the 'context' variant (boat on water, car on road) with the sizes
    of ``budget`` and the settings every Day 5 notebook shares, so that their numbers
    compare: only the stem of ResNet-18 (7x7 conv and max-pool: stride 4, an 11-pixel
    receptive field) and 1x1 reduce / head convs, so that without a unit a pixel sees only a
    neighbourhood about a hull's height (given 8 times the steps the baseline learns to read the
    surface from it: ``context_steps``); no aux head; Adam.

    Args:
        name: a registered model name (``context_baseline``, ``gcu``, ``glore``, ``ginet``;
            other families such as ``pspnet`` keep their own backbone).
        budget: a ``runtime.Budget`` (image size, scenes, iterations, batch, width).
        seed: seeds the data split, the initialisation and the batch order.
        progress: show the training progress bar.
        variant: synthetic variant (``'context'``; ``'harbour_street'`` tells the class by
            the whole image).
        iters: training iterations (default half of ``budget.iters``).
        fit: False scores the same network at its initialisation, without a step (the
            control of a lesson check: the check must fail on it).
        **model_kw: overrides of the model keywords (``sc_loss=True`` trains GINet with
            ``ContextLoss``).

    Returns:
        (trainer, scores): the fitted ``Trainer`` and :func:`context_scores` on the held-out scenes.
    """
    paddle.seed(seed)
    train, val = synthetic_splits(budget, variant, train_transform(budget.image_size), seed=seed)
    kw = dict(depth=18, width=budget.width // 2, aux=False)
    if name in CONTEXT_MODELS:                   # other families (pspnet) keep their backbone
        kw.update(stage=0, kernel=1)
    if name == "ginet":                          # its class nodes start from the names' word vectors
        kw.update(classes=train.classes)
    kw.update(model_kw)
    model = build_model(name, train.num_classes, **kw)
    loss = ContextLoss() if kw.get("sc_loss") else None
    # no val_data while fitting: the held-out scenes are scored once, by context_scores below
    trainer = Trainer(model, train, None, iters=iters or budget.iters // 2, batch_size=budget.batch_size,
                      lr=3e-3, optimizer="adam", loss_fn=loss, seed=seed, progress=progress)
    if fit:
        trainer.fit()
    trainer.val_data = val
    return trainer, context_scores(trainer, val)


def context_scores(trainer, data):
    """Held-out scores of ``trainer``'s model on a context dataset.

    Args:
        trainer: a fitted ``Trainer`` (its ``predict`` is used).
        data: a dataset of the 'context' variant (items ``(image, label)``; ``classes``).

    Returns:
        ``segmentation_scores`` plus ``conf`` (the confusion matrix), ``hull_iou``: the IoU
        of "is a hull" (boat or car, either class) and ``swap``: of the boat and car pixels
        predicted as a hull, the fraction given the *other* hull class (0.5 = chance; 0.5
        too when no hull pixel is predicted as a hull, since then nothing was decided).
    """
    metric = SegMetric(data.num_classes)
    for s in range(0, len(data), 8):
        items = [data[i] for i in range(s, min(s + 8, len(data)))]
        metric.update(trainer.predict(np.stack([x for x, _ in items])), np.stack([y for _, y in items]))
    scores = metric.compute()
    conf = metric.conf
    hulls = [data.classes.index("boat"), data.classes.index("car")]
    as_hull = conf[np.ix_(hulls, hulls)]             # (2, 2): true boat/car x predicted boat/car
    # a hull pixel labelled as stuff is a miss, not a swap: dividing by all hull pixels would
    # reward a model that never predicts a hull
    swap = (as_hull.sum() - np.trace(as_hull)) / as_hull.sum() if as_hull.sum() else 0.5
    inter = as_hull.sum()
    union = conf[hulls].sum() + conf[:, hulls].sum() - inter
    scores.update(conf=conf.copy(), swap=float(swap), hull_iou=float(inter / union) if union else float("nan"))
    return scores


# The two scene designs: in 'context' every scene holds water and road, so a hull's class is
# decided by its own surroundings (local context, beyond the stem's 11 pixels); in
# 'harbour_street' a scene is all water or all road, so the whole image decides (global context).
SCENES = ("context", "harbour_street")
UNITS = {"baseline": "context_baseline", "gcu": "gcu", "glore": "glore", "ginet": "ginet"}
METRICS = ("miou", "boat_iou", "car_iou", "hull_iou", "swap")


def sizes(fast=False):
    """The experiment's sizes: the course's CPU budget (the one the Day 5 notebooks train
    their lesson runs with, in every mode), or tiny FAST sizes that only prove the code runs.

    Args:
        fast: the tiny sizes of ``make experiments --fast``.

    Returns:
        a ``common.runtime.Budget``.
    """
    if fast:
        return Budget("FAST", image_size=64, train_scenes=16, val_scenes=8, iters=12,
                      batch_size=4, width=8, eval_every=12)
    return Budget("CPU", image_size=96, train_scenes=256, val_scenes=32, iters=400,
                  batch_size=8, width=16, eval_every=100)


def score_run(name, budget, seed, variant, iters=None):
    """Train one (model, scene design, seed) with :func:`context_experiment`.

    Args:
        iters: training iterations (default: :func:`context_experiment`'s, half the budget's).

    Returns:
        ``{"miou", "boat_iou", "car_iou", "hull_iou", "swap"}`` and the IoU of each surface
        (``sky_iou``, ``water_iou``, ``road_iou``) on the held-out scenes of ``variant`` (see
        :func:`context_scores`).
    """
    trainer, s = context_experiment(name, budget, seed=seed, progress=False, variant=variant, iters=iters)
    iou, _ = class_iou(s, trainer.val_data.classes)
    nan = float("nan")                          # a class absent from the held-out scenes
    return dict(miou=s["miou"], boat_iou=iou.get("boat", nan), car_iou=iou.get("car", nan),
                hull_iou=s["hull_iou"], swap=s["swap"],
                **{f"{c}_iou": iou.get(c, nan) for c in ("sky", "water", "road")})


def main(fast=False):
    """Every unit and the baseline on both scene designs, seeds 0, 1, 2 (FAST: seed 0, a few
    steps); writes ``results/context_units.json`` (FAST: ``build/experiments-fast/``).

    Returns:
        The result dict of ``common.course.experiments.run``; variants are named ``<scenes>/<unit>``.
    """
    budget = sizes(fast)
    variants = {f"{scenes}/{unit}": (lambda seed, m=model, v=scenes: score_run(m, budget, seed, v))
                for scenes in SCENES for unit, model in UNITS.items()}
    meta = dict(
        question="Does a graph context unit help the same network? Only the unit differs.",
        network="ContextNet: ResNet-18 stem only (stride 4, 11-pixel receptive field), 1x1 reduce "
                "and head convs, mid = width * 4 channels, no aux head",
        training=f"Adam lr 3e-3, {budget.iters // 2} iterations, batch {budget.batch_size}, "
                 f"{budget.train_scenes} training scenes of {budget.image_size} px, random scale/crop/flip",
        scoring=f"{budget.val_scenes} held-out scenes; hull_iou = IoU of boat-or-car; swap = of the "
                "boat and car pixels predicted as a hull, the fraction given the other hull class",
        scenes={"context": "every scene holds water and road; a hull's class follows its own surface",
                "harbour_street": "a scene is all water (boats) or all road (cars)"},
        units=UNITS)
    return run(NAME, variants, seeds=(0,) if fast else (0, 1, 2), fast=fast, meta=meta)


def subset(result, units=tuple(UNITS), scenes=SCENES):
    """``result`` restricted to the variants ``<scenes>/<unit>`` (for tables and plots of one
    unit against the baseline).

    Args:
        result: a dict from :func:`main` or ``common.course.experiments.load(NAME)``.
        units: unit names (keys of ``UNITS``), in the order to show.
        scenes: scene designs, in the order to show.

    Returns:
        A shallow copy of ``result`` with only those variants.
    """
    names = [f"{s}/{u}" for s in scenes for u in units]
    missing = [n for n in names if n not in result["variants"]]
    if missing:
        raise KeyError(f"{result.get('name')}: no variants {missing}; rerun "
                       f"`make experiments EXPERIMENTS={NAME}`")
    return {**result, "variants": {n: result["variants"][n] for n in names}}


def class_iou(scores, classes):
    """Held-out IoU of each class present in the scenes (the context scenes have no grass).

    Args:
        scores: :func:`context_scores` (or ``segmentation_scores``) of one model.
        classes: the dataset's class names, in label order.

    Returns:
        ``{class: IoU}`` of the classes whose IoU is defined, and a one-line text of it.
    """
    iou = {c: float(v) for c, v in zip(classes, scores["iou"]) if not np.isnan(v)}
    return iou, " | ".join(f"{c} {v:.3f}" for c, v in iou.items())


def misses_target(iou):
    """The classes below the course's per-class target (``common.course.weights.misses_target``, with
    the hulls, boat and car, as the things).

    Args:
        iou: ``{class: IoU}`` from :func:`class_iou`.

    Returns:
        ``{class: IoU}`` of the classes that miss it (empty: every class meets it).
    """
    return weights.misses_target(iou, things=("boat", "car"))
