"""Day 2 ablation: what FCN's skips buy. FCN-32s vs 16s vs 8s, one thing changed: the finest
skip (none, pool4, pool4 + pool3). Same VGG16-BN backbone (narrow), data, optimiser, iterations
and seeds; scored on held-out scenes by mIoU and boundary F (``common.metrics.boundary_f_score``,
2-pixel tolerance), the score the skips should move most."""
from __future__ import annotations

from common.course import experiments
from common.course.experiments._semantic import train_and_score

NAME = "fcn_strides"
VARIANTS = {"FCN-32s": "fcn32s", "FCN-16s": "fcn16s", "FCN-8s": "fcn8s"}
SIZES = {
    False: dict(image_size=64, train_scenes=256, val_scenes=32, iters=200, batch_size=8, lr=3e-3, width=4),
    True: dict(image_size=64, train_scenes=16, val_scenes=4, iters=3, batch_size=4, lr=3e-3, width=4),
}


def model_kw(width):
    """The narrow VGG16-BN FCN of the ablation (Day 2 · 03 builds its live models the same way)."""
    return dict(width=width, fc_channels=16 * width, batch_norm=True, dropout=0.0)


def run_variant(variant, seed=0, fast=False):
    """Train and score one variant with one seed at the ablation's size (Day 2 · 03 reruns seed 0).

    Args:
        variant: a key of ``VARIANTS``.
        seed: the run's seed.
        fast: the tiny sizes of ``make experiments --fast``.

    Returns:
        dict of held-out scores (mIoU, boundary F, per-class boundary F).
    """
    s = dict(SIZES[bool(fast)])
    width = s.pop("width")
    return train_and_score(VARIANTS[variant], seed, **s, per_class_boundary=True, **model_kw(width))


def main(fast=False):
    """Run the three variants over seeds 0, 1, 2 (one seed in FAST mode) and write the results."""
    s = dict(SIZES[bool(fast)])
    width = s.pop("width")
    variants = {v: (lambda seed, v=v: run_variant(v, seed, fast)) for v in VARIANTS}
    return experiments.run(NAME, variants, seeds=(0,) if fast else (0, 1, 2), fast=fast,
                           meta=dict(sizes=s, model=model_kw(width), changed="the finest skip: none / pool4 / pool3",
                                     boundary_tolerance_px=2, loss="cross-entropy weighted by sqrt(f_max / f_c)",
                                     upsampling="2x layers learned from bilinear, final layer fixed bilinear",
                                     data="synthetic 'scenes', train seed 0, val seed 10000"))
