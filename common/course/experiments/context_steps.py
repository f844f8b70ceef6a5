"""Day 5 follow-up: is what a graph unit buys a capability or a head start?

``context_units`` compares the units at the live budget (200 steps). Here the baseline and
GloRe (the unit that did best there) train 8 times longer, 1600 steps, on both scene designs,
three seeds, with everything else as in ``context_units``. If the baseline then separates
boat from car too, its hull pixels did see enough of their surface: hulls are up to 17 pixels
tall at 96 px (median 11) but flat, and 92% of hull pixels have a pixel of their surface within
4 px, inside the stem's 11-pixel field widened by the bilinear upsampling from stride 4
(Day 5 05 measures both); then the units' win at 200 steps is one of speed.

Run: ``make experiments EXPERIMENTS=context_steps`` (``python -m common.course.experiments context_steps``).
"""
from __future__ import annotations

from common.course.experiments import run

from .context_units import SCENES, score_run, sizes

NAME = "context_steps"
LONG = 8                                     # times the live 200 steps
UNITS = {"baseline": "context_baseline", "glore": "glore"}


def main(fast=False):
    """Baseline and GloRe on both scene designs at 8x the live steps, seeds 0, 1, 2 (FAST:
    seed 0, tiny sizes); writes ``results/context_steps.json``.

    Returns:
        The result dict of ``common.course.experiments.run``; variants are named ``<scenes>/<unit>``,
        as in ``context_units``.
    """
    budget = sizes(fast)
    iters = LONG * (budget.iters // 2)
    variants = {f"{scenes}/{unit}": (lambda seed, m=model, v=scenes: score_run(m, budget, seed, v, iters))
                for scenes in SCENES for unit, model in UNITS.items()}
    meta = dict(question="With 8x the live steps, does the network without a unit learn the context too?",
                network="as context_units (ResNet-18 stem, 1x1 reduce and head convs)",
                training=f"as context_units but {iters} iterations (context_units: {budget.iters // 2})",
                scoring="as context_units, plus the IoU of each surface", units=UNITS)
    return run(NAME, variants, seeds=(0,) if fast else (0, 1, 2), fast=fast, meta=meta)
