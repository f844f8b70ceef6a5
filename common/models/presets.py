"""Model sizes by name, in one table: ``build_model(name, K, preset=...)``.

- ``"full"``: the paper's size, the builders' own defaults (``build_model``'s default).
- ``"cpu"``: the course's CPU size for 64..96-pixel scenes on a 2-core laptop: what the
  benchmarks time and the notebooks and course weights start from.
- ``"tiny"``: the tests' size, a fraction of a second per forward pass.

A preset is a dict of keyword arguments, or a function returning one whose parameters are
knobs: ``build_model("mask_rcnn", K, preset="cpu", width=8)`` is the CPU design at half its
width (FPN, box and mask heads scale with it), and ``image_size`` scales what depends on the
training images (SOLO's scale ranges, Panoptic-DeepLab's stuff area). Any other keyword
replaces the preset's value. Facts of a dataset (``thing_ids``, ``stuff_ids``, GINet's
``classes``) are never in a preset: the caller passes them.
"""
from __future__ import annotations

import inspect
from functools import partial

PRESET_NAMES = ("full", "cpu", "tiny")


def _fcn(width=8):
    """VGG16-BN at ``width`` (1/8 of the paper's at 8), FC6/FC7 at 16 x width."""
    return dict(width=width, fc_channels=16 * width, batch_norm=True)


def _mask_rcnn(width=16):
    """ResNet-18 of ``width``, FPN of 2 x width on P2-P5 (no P6), anchors 12-96 pixels, fewer
    proposals and RoIs, 7x7 masks of 2 x width channels, at most 20 detections."""
    return dict(depth=18, width=width, fpn_channels=2 * width, rpn_p6=False,
                anchor_sizes=(12, 24, 48, 96), rpn_batch=64, rpn_pre_nms=(300, 200),
                rpn_post_nms=(100, 50), roi_batch=64, fc_channels=8 * width, mask_roi_size=7,
                mask_channels=2 * width, mask_convs=2, canonical_size=48, max_detections=20)


def _upsnet(width=16):
    """Mask R-CNN's CPU size plus a plain (not deformable) semantic head of 2 x width channels."""
    return dict(_mask_rcnn(width), sem_channels=2 * width, deformable=False)


def _solo(width=16, image_size=96):
    """ResNet-18 of ``width``, two GN convs per tower of 4 x width, two levels (P3 with a 12x12
    grid for small objects, P4 with 8x8 for large), scale ranges in pixels of sqrt(area) as
    fractions of ``image_size``."""
    return dict(depth=18, width=width, fpn_channels=4 * width, head_channels=4 * width,
                stacked_convs=2, levels=(1, 2), num_grids=(12, 8),
                scale_ranges=((0, 0.3 * image_size), (0.2 * image_size, 1e4)))


def _panoptic_deeplab(width=16, image_size=96):
    """ResNet-18 of ``width`` at output stride 16, 4 x width channels, ASPP rates (1, 2, 3) (the
    stride-16 map of a 96-pixel image is only 6x6), keypoint NMS window 5 and a stuff area
    threshold scaled with ``image_size``."""
    return dict(depth=18, width=width, channels=4 * width, aspp_rates=(1, 2, 3), nms_kernel=5,
                stuff_area=max(8, image_size ** 2 // 150))


_RESNET18 = dict(cpu=dict(depth=18, width=16), tiny=dict(depth=18, width=4))
PRESETS = {
    "tiny": dict(cpu=dict(width=16), tiny=dict(width=4, depth=2)),
    **{n: dict(cpu=_fcn, tiny=partial(_fcn, width=4)) for n in ("fcn32s", "fcn16s", "fcn8s")},
    "unet": dict(cpu=dict(width=16), tiny=dict(width=4, depth=3)),
    "pspnet": _RESNET18,
    "deeplabv1": dict(cpu=dict(width=8), tiny=dict(width=4)),
    "deeplabv2": dict(cpu=dict(depth=18, width=8), tiny=dict(depth=18, width=4)),
    "deeplabv3": dict(cpu=dict(depth=18, width=8), tiny=dict(depth=18, width=4)),
    "deeplabv3plus": dict(cpu=dict(width=8, middle_blocks=2), tiny=dict(width=4, middle_blocks=1)),
    **{n: _RESNET18 for n in ("context_baseline", "gcu", "glore", "ginet")},
    "mask_rcnn": dict(cpu=_mask_rcnn, tiny=partial(_mask_rcnn, width=4)),
    "upsnet": dict(cpu=_upsnet, tiny=partial(_upsnet, width=4)),
    "solo": dict(cpu=_solo, tiny=partial(_solo, width=4, image_size=64)),
    "panoptic_deeplab": dict(cpu=_panoptic_deeplab, tiny=partial(_panoptic_deeplab, width=4, image_size=64)),
}


def preset_kwargs(name, preset="full", **kwargs):
    """The keyword arguments ``build_model(name, K, preset=preset, **kwargs)`` gives the builder.

    Args:
        name: a model name (``common.models.list_models()``).
        preset: ``"full"`` (``kwargs`` as they are), ``"cpu"`` or ``"tiny"`` (module doc).
        **kwargs: knobs of the preset (``width``, ``image_size``) and keywords replacing its values.

    Returns:
        dict of keyword arguments of the model's builder.
    """
    if preset not in PRESET_NAMES:
        raise ValueError(f"preset must be one of {PRESET_NAMES}, got {preset!r}")
    if preset == "full":
        return dict(kwargs)
    if name not in PRESETS:
        raise ValueError(f"no presets for model {name!r}; models with presets: {sorted(PRESETS)}")
    entry = PRESETS[name][preset]
    if not callable(entry):
        return {**entry, **kwargs}
    knobs = {k: kwargs.pop(k) for k in inspect.signature(entry).parameters if k in kwargs}
    return {**entry(**knobs), **kwargs}
