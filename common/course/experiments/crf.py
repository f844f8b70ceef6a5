"""Day 4 ablation: what the fully connected CRF buys. One thing changed: the post-processing.

One DeepLab V2 (ResNet-18, output stride 8, summed ASPP at rates 1/2/3/4, single-scale input
to keep the runs short) is trained per seed; its held-out softmax is scored as is
(``CRF off``) and after ``common.crf.DenseCRF()`` (``CRF on``: 5 mean-field iterations,
``common.crf.DEFAULTS``, fixed before this experiment). The same trained weights serve both
variants of a seed, so the difference is the CRF alone.
"""
from __future__ import annotations

from common.course import experiments
from common.course.experiments import _deeplab
from common.crf import DEFAULTS, DenseCRF
from common.models.deeplab import DeepLabV2

NAME = "crf"
_TRAINED = {}           # (fast, seed) -> (probs, labels, images, classes): shared by on/off


def outputs(seed, fast, progress=False):
    """The trained V2 of ``seed`` on the held-out scenes, trained once per (fast, seed) and kept
    until ``main`` ends (a notebook rerunning one seed keeps it).

    Args:
        seed: the run's seed.
        fast: the tiny sizes of ``make experiments --fast``.
        progress: show the training's progress bar.

    Returns:
        (softmax (N, K, H, W), labels (N, H, W), uint8 images (N, H, W, 3), class names).
    """
    key = (bool(fast), seed)
    if key not in _TRAINED:
        s = _deeplab.sizes(fast)
        model, val = _deeplab.train(lambda k: DeepLabV2(k, depth=18, width=s["width"], rates=(1, 2, 3, 4),
                                                        msc_scales=None), seed, s, progress=progress)
        _TRAINED[key] = _deeplab.probs_and_labels(model, val) + (val.classes,)
    return _TRAINED[key]


def variant(on, fast, progress=False):
    """One variant of the ablation: V2 with the CRF on or off.

    Args:
        on: apply ``DenseCRF`` to V2's probabilities.
        fast: the tiny sizes of ``make experiments --fast``.
        progress: show the training's progress bar.

    Returns:
        ``fn(seed)`` giving the held-out scores of seed's V2.
    """
    def fn(seed):
        probs, labels, images, classes = outputs(seed, fast, progress)
        if on:
            probs = DenseCRF()(probs, images)
        return _deeplab.scores(probs.argmax(1), labels, classes)
    return fn


def main(fast=False):
    """CRF off / on over seeds 0, 1, 2 (one seed in FAST mode); writes the results file."""
    variants = {"CRF off": variant(False, fast), "CRF on": variant(True, fast)}
    try:
        return experiments.run(NAME, variants, seeds=(0,) if fast else (0, 1, 2), fast=fast,
                               meta=dict(sizes=_deeplab.sizes(fast), crf=dict(DEFAULTS, iters=5),
                                         model="DeepLab V2, ResNet-18, output stride 8, rates 1/2/3/4, single scale",
                                         changed="dense CRF post-processing on or off (same trained weights)",
                                         boundary_tolerance_px=_deeplab.BOUNDARY_TOLERANCE,
                                         data="synthetic 'scenes', train seed 0, val seed 10000"))
    finally:
        _TRAINED.clear()
