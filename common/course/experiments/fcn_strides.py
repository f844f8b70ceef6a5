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


def main(fast=False):
    """Run the three variants over seeds 0, 1, 2 (one seed in FAST mode) and write the results."""
    s = dict(SIZES[bool(fast)])
    width = s.pop("width")
    model_kw = dict(width=width, fc_channels=16 * width, batch_norm=True, dropout=0.0)
    variants = {v: (lambda seed, n=n: train_and_score(n, seed, **s, **model_kw)) for v, n in VARIANTS.items()}
    return experiments.run(NAME, variants, seeds=(0,) if fast else (0, 1, 2), fast=fast,
                           meta=dict(sizes=s, model=model_kw, changed="the finest skip: none / pool4 / pool3",
                                     boundary_tolerance_px=2, loss="cross-entropy weighted by sqrt(f_max / f_c)",
                                     data="synthetic 'scenes', train seed 0, val seed 10000"))
