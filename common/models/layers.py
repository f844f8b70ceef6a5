"""Small building blocks shared by every model family."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F


class ConvBNReLU(nn.Sequential):
    """k x k conv (no bias) + BatchNorm + ReLU; ``padding`` defaults to 'same' for odd k.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel_size: k.
        stride: conv stride.
        dilation: atrous rate.
        padding: None for ``dilation * (k - 1) // 2`` (same size at stride 1, odd k).
        groups: conv groups (``in_ch`` for a depthwise conv).
        relu: end with a ReLU (False for a linear projection).
    """

    def __init__(self, in_ch, out_ch, kernel_size=3, stride=1, dilation=1, padding=None,
                 groups=1, relu=True):
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        layers = [nn.Conv2D(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                            dilation=dilation, groups=groups, bias_attr=False),
                  nn.BatchNorm2D(out_ch)]
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class SegHead(nn.Sequential):
    """The segmentation head of PSPNet, the Day 5 context networks and their aux heads (FCN's
    "FCNHead"): a k x k conv + BN + ReLU to ``mid_channels``, dropout, a 1x1 classifier.

    Args:
        in_channels: channels of the feature map.
        mid_channels: channels of the conv; None drops the conv (dropout and the classifier
            straight on the input, as PaddleSeg's GloRe and GINet heads do).
        num_classes: output channels (class scores).
        dropout: dropout probability before the classifier.
        kernel: the conv's kernel size (1 for the Day 5 short-sighted networks).
    """

    def __init__(self, in_channels, mid_channels, num_classes, dropout=0.1, kernel=3):
        layers = [] if mid_channels is None else [ConvBNReLU(in_channels, mid_channels, kernel)]
        super().__init__(*layers, nn.Dropout(dropout),
                         nn.Conv2D(in_channels if mid_channels is None else mid_channels, num_classes, 1))


def gn_groups(channels, max_groups=32, min_group_size=4):
    """Number of GroupNorm groups for ``channels``: the most groups, at most ``max_groups``
    (32, as in Wu & He's Group Normalization), that divide ``channels`` with at least
    ``min_group_size`` channels each; 1 when no such split exists (fewer than 8 channels).

    Args:
        channels: the normalised channel count (>= 1).
        max_groups, min_group_size: the two limits above.

    Returns:
        An int g >= 1 with ``channels % g == 0`` (GroupNorm's requirement).
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    for g in range(min(max_groups, channels // min_group_size), 1, -1):
        if channels % g == 0:
            return g
    return 1


class ConvGNReLU(nn.Sequential):
    """k x k conv (no bias) + GroupNorm (groups from ``gn_groups``) + ReLU: the block of the
    detection and panoptic heads, independent of the (tiny) per-device batch size."""

    def __init__(self, in_ch, out_ch, kernel_size=3, stride=1, dilation=1, padding=None, relu=True):
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        layers = [nn.Conv2D(in_ch, out_ch, kernel_size, stride=stride, padding=padding,
                            dilation=dilation, bias_attr=False),
                  nn.GroupNorm(gn_groups(out_ch), out_ch)]
        if relu:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise k x k (+BN) then pointwise 1x1 (+BN+ReLU): the separable conv of Xception/V3+.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel_size: k of the depthwise conv.
        stride: stride of the depthwise conv.
        dilation: atrous rate of the depthwise conv.
        relu: end with a ReLU.
    """

    def __init__(self, in_ch, out_ch, kernel_size=3, stride=1, dilation=1, relu=True):
        super().__init__(
            ConvBNReLU(in_ch, in_ch, kernel_size, stride, dilation, groups=in_ch, relu=False),
            ConvBNReLU(in_ch, out_ch, 1, relu=relu))


class ImagePooling(nn.Sequential):
    """Global average pooling -> 1x1 conv+BN+ReLU: image-level context, broadcast back."""

    def __init__(self, in_ch, out_ch):
        super().__init__(nn.AdaptiveAvgPool2D(1), ConvBNReLU(in_ch, out_ch, 1))

    def forward(self, x):
        return super().forward(x).expand([-1, -1, x.shape[2], x.shape[3]])


class ASPP(nn.Layer):
    """Atrous spatial pyramid pooling of DeepLab V3 (the one ASPP of DeepLab V3/V3+ and
    Panoptic-DeepLab): a 1x1 branch, atrous 3x3 branches (BN+ReLU) and image pooling,
    concatenated along channels and projected by a 1x1 conv+BN+ReLU.

    Args:
        in_ch, out_ch: input channels; channels of every branch and of the output.
        rates: dilation of each atrous 3x3 branch (padding = rate keeps any H, W).
        separable: depthwise-separable atrous convs (V3+).
        image_pooling: include the image-pooling branch.
    """

    def __init__(self, in_ch, out_ch=256, rates=(6, 12, 18), separable=False, image_pooling=True):
        super().__init__()
        self.rates = tuple(rates)
        conv = SeparableConvBNReLU if separable else ConvBNReLU
        branches = [ConvBNReLU(in_ch, out_ch, 1)] + [conv(in_ch, out_ch, 3, dilation=r) for r in rates]
        if image_pooling:
            branches.append(ImagePooling(in_ch, out_ch))
        self.branches = nn.LayerList(branches)
        self.project = ConvBNReLU(len(branches) * out_ch, out_ch, 1)

    def forward(self, x):
        return self.project(paddle.concat([b(x) for b in self.branches], axis=1))


def resize_to(x, size, mode="bilinear"):
    """Resize (N, C, h, w) to ``size`` = (H, W); bilinear uses the half-pixel convention.

    Args:
        x: tensor (N, C, h, w).
        size: (H, W).
        mode: ``"bilinear"`` or ``"nearest"``.

    Returns:
        tensor (N, C, H, W) (``x`` itself when the size already matches).
    """
    # the shortcut compares shapes, which a graph being exported (paddle.jit.save with
    # any H, W) only knows as tensors: there the resize always runs (a no-op if equal)
    if paddle.in_dynamic_mode() and tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def bilinear_kernel(in_ch, out_ch, k):
    """Weights (in_ch, out_ch, k, k) that make ``Conv2DTranspose`` a bilinear upsampler.

    Channel i maps to channel i only (FCN's initialisation of its upsampling layers).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        k: kernel size (2 x the stride for an exact bilinear upsampler).

    Returns:
        float32 array (in_ch, out_ch, k, k).
    """
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = np.arange(k, dtype=np.float32)
    filt = 1 - np.abs(og - center) / factor
    w = np.zeros((in_ch, out_ch, k, k), dtype=np.float32)
    w[np.arange(min(in_ch, out_ch)), np.arange(min(in_ch, out_ch))] = np.outer(filt, filt)
    return w


def count_parameters(layer) -> int:
    """Number of trainable scalars in ``layer``.

    Args:
        layer: a ``paddle.nn.Layer``; frozen parameters (``stop_gradient``) are not counted.

    Returns:
        int.
    """
    return int(sum(int(np.prod(p.shape)) for p in layer.parameters() if not p.stop_gradient))


def load_pretrained(layer, path, key_map=None):
    """Load a local state-dict file into ``layer``; report keys that do not match.

    ``key_map`` maps the file's key to ours (for example paddle.vision names to the
    course's). Raises with the file name when nothing matches (a checkpoint of another
    model) or a shape differs.
    """
    import os

    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = paddle.load(path)
    if key_map is not None:
        state = {key_map(k): v for k, v in state.items() if key_map(k) is not None}
    own = layer.state_dict()
    matched = {k: v for k, v in state.items() if k in own}
    if not matched:
        raise ValueError(f"{path}: no parameter names match this {type(layer).__name__}; "
                         "is it a checkpoint of another model?")
    for k, v in matched.items():
        if list(v.shape) != list(own[k].shape):
            raise ValueError(f"{path}: shape of {k} is {list(v.shape)}, "
                             f"the model expects {list(own[k].shape)}")
    layer.set_state_dict(matched)
    return sorted(set(own) - set(matched))


class FPN(nn.Layer):
    """Feature pyramid network (特征金字塔, Lin et al. 2017), the one neck of Mask R-CNN,
    UPSNet and SOLO: 1x1 lateral convs, a top-down path that upsamples (nearest) the
    coarser sum and adds the lateral, a 3x3 output conv on each sum.

    Args:
        in_channels: channels of the backbone maps it gets, finest first.
        out_channels: channels of every pyramid level.
        p6: also return P6, the top output subsampled by 2 (a max-pool of kernel 1,
            stride 2, as in Mask R-CNN's RPN and SOLO): the level of the largest objects.
        norm: None (convs with bias, the paper) or ``"gn"`` (conv without bias + GroupNorm
            with ``gn_groups``, for the tiny per-device batches of detection).

    ``forward(feats)`` takes the list of maps and returns the pyramid, finest first (plus
    P6 at the end).
    """

    def __init__(self, in_channels, out_channels=256, p6=True, norm=None):
        super().__init__()
        if norm not in (None, "gn"):
            raise ValueError(f"norm must be None or 'gn', got {norm!r}")

        def conv(cin, k):
            if norm == "gn":
                return ConvGNReLU(cin, out_channels, k, relu=False)
            return nn.Conv2D(cin, out_channels, k, padding=k // 2)

        self.lateral = nn.LayerList([conv(c, 1) for c in in_channels])
        self.output = nn.LayerList([conv(out_channels, 3) for _ in in_channels])
        self.p6, self.norm = p6, norm

    def forward(self, feats):
        if len(feats) != len(self.lateral):
            raise ValueError(f"FPN built for {len(self.lateral)} input maps, got {len(feats)}")
        x = self.lateral[-1](feats[-1])
        outs = [self.output[-1](x)]
        for i in range(len(feats) - 2, -1, -1):
            lat = self.lateral[i](feats[i])
            x = lat + resize_to(x, lat.shape[-2:], mode="nearest")
            outs.insert(0, self.output[i](x))
        if self.p6:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return outs
