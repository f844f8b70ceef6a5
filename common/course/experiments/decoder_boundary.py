"""Day 4 ablation: what V3+'s decoder buys. One thing changed: the stride-4 decoder.

- ``V3 (no decoder)``: ASPP output -> 1x1 classifier -> bilinear x16;
- ``V3+ (decoder)``: the same ASPP output upsampled x4, concatenated with the backbone's
  stride-4 feature (1x1-reduced), two separable 3x3 convs, 1x1 classifier, bilinear x4.

Same backbone (ResNet-18, output stride 16, no multi-grid), the same ASPP (concat + image
pooling, plain 3x3 convs, rates 1/2/3: the papers' 6/12/18 on a 33x33 map, scaled to our
4x4-6x6 layer4 map), data, optimiser, iterations and seeds. Scored on held-out scenes by
boundary F (2-pixel tolerance), the score a decoder should move most, and mIoU.
"""
from __future__ import annotations

from common.course import experiments
from common.course.experiments import _deeplab
from common.models.deeplab import ASPPConcat, DeepLabV3, DeepLabV3Plus

NAME = "decoder_boundary"
RATES = (1, 2, 3)


def build(decoder, num_classes, width):
    """ResNet-18 (output stride 16) + the same concat ASPP, with or without V3+'s decoder.

    Args:
        decoder: bool. num_classes: K. width: ResNet width.
    Returns:
        a ``DeepLabV3Plus`` (resnet backbone) or a ``DeepLabV3`` with the same ASPP.
    """
    if decoder:
        model = DeepLabV3Plus(num_classes, backbone="resnet", depth=18, width=width, output_stride=16,
                              rates=(6, 12, 18))
        ch = model.decoder.fuse[0][1][0]._in_channels - model.decoder.reduce[0]._out_channels
    else:
        model = DeepLabV3(num_classes, depth=18, width=width, output_stride=16, multi_grid=(1, 1, 1))
        ch = model.classifier._in_channels
    model.aspp = ASPPConcat(model.backbone.channels[-1], ch, RATES)      # the same head in both
    return model


def variant(decoder, fast, progress=False):
    """One variant of the ablation: V3 without or V3+ with its decoder.

    Args:
        decoder: V3+'s stride-4 decoder on (True) or off (V3).
        fast: the tiny sizes of ``make experiments --fast``.
        progress: show the training's progress bar.

    Returns:
        ``fn(seed)`` giving the held-out scores of ``build(decoder, ...)`` trained at those sizes.
    """
    return _deeplab.variant(lambda k, width: build(decoder, k, width), fast, progress)


def untrained(decoder, seed=0, fast=False):
    """The same network before training, for the lesson check's floor.

    Args:
        decoder: V3+'s decoder on (True) or off (V3).
        seed: the initialisation's seed.
        fast: the tiny sizes of ``make experiments --fast``.

    Returns:
        ``(scores, labels)``: its held-out scores and the held-out labels (``_deeplab.untrained``).
    """
    return _deeplab.untrained(lambda k, width: build(decoder, k, width), seed, fast)


def main(fast=False):
    """Both models over seeds 0, 1, 2 (one seed in FAST mode); writes the results file."""
    variants = {"V3 (no decoder)": variant(False, fast), "V3+ (decoder)": variant(True, fast)}
    return experiments.run(NAME, variants, seeds=(0,) if fast else (0, 1, 2), fast=fast,
                           meta=dict(sizes=_deeplab.sizes(fast), rates=RATES,
                                     backbone="ResNet-18, output stride 16",
                                     changed="V3+'s stride-4 decoder on or off (same backbone and ASPP)",
                                     boundary_tolerance_px=_deeplab.BOUNDARY_TOLERANCE,
                                     data="synthetic 'scenes', train seed 0, val seed 10000"))
