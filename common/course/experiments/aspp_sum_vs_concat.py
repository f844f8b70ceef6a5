"""Day 4 ablation: what V3's ASPP buys over V2's. One thing changed, the head on layer4:

- ``V2 ASPP (sum)``: four atrous 3x3 convs straight to class scores, summed;
- ``V3 ASPP (concat + image pooling)``: a 1x1, three atrous 3x3 (BN+ReLU) and an image-pooling
  branch, concatenated, projected by a 1x1 conv, then a 1x1 classifier.

Same backbone (ResNet-18, output stride 8, no multi-grid), data, crops, optimiser, iterations
and seeds. Rates: each paper's rates at output stride 8 (V2 6/12/18/24, V3 12/24/36) are
sized for a 65x65 layer4 map (513-pixel crops); ours is 8x8 (64-pixel crops) to 12x12
(96-pixel scenes), so both are divided by 6 (V2 1/2/3/4, V3 2/4/6): the same fraction of
the map as in the papers, instead of taps that read only padding.
"""
from __future__ import annotations

import paddle.nn as nn

from common.course import experiments
from common.course.experiments import _deeplab
from common.models.deeplab import ASPPConcat, ASPPSum, DeepLabV3

NAME = "aspp_sum_vs_concat"
RATES = {"sum": (1, 2, 3, 4), "concat": (2, 4, 6)}


def build(kind, num_classes, width):
    """The shared ResNet-18 (output stride 8) with V2's summed or V3's concatenated ASPP.

    Args:
        kind: 'sum' or 'concat'. num_classes: K. width: ResNet width.
    Returns:
        a ``DeepLabV3`` whose ``aspp``/``classifier`` are the chosen head.
    """
    model = DeepLabV3(num_classes, depth=18, width=width, output_stride=8, multi_grid=(1, 1, 1))
    c5 = model.backbone.channels[-1]
    if kind == "sum":
        model.aspp, model.classifier = ASPPSum(c5, num_classes, RATES["sum"]), nn.Identity()
    elif kind == "concat":
        ch = model.classifier._in_channels
        model.aspp = ASPPConcat(c5, ch, RATES["concat"])
    else:
        raise ValueError(f"kind must be 'sum' or 'concat', got {kind!r}")
    return model


def variant(kind, fast):
    return _deeplab.variant(lambda k, width: build(kind, k, width), fast)


def main(fast=False):
    """Both heads over seeds 0, 1, 2 (one seed in FAST mode); writes the results file."""
    variants = {"V2 ASPP (sum)": variant("sum", fast),
                "V3 ASPP (concat + image pooling)": variant("concat", fast)}
    return experiments.run(NAME, variants, seeds=(0,) if fast else (0, 1, 2), fast=fast,
                           meta=dict(sizes=_deeplab.sizes(fast), rates=RATES, backbone="ResNet-18, output stride 8",
                                     changed="the ASPP head: summed class scores vs concat + image pooling + 1x1",
                                     boundary_tolerance_px=_deeplab.BOUNDARY_TOLERANCE,
                                     data="synthetic 'scenes', train seed 0, val seed 10000"))
