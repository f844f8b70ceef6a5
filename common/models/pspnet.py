"""PSPNet (Zhao et al., 2017): a dilated ResNet plus the pyramid pooling module (PSP).

The PSP module pools the feature map to 1x1, 2x2, 3x3 and 6x6 bins (adaptive average
pooling: each bin averages a region of the map; the 1x1 bin is global context), reduces
each to C/4 channels by a 1x1 conv + BN + ReLU, upsamples each back to the map's size
(bilinear) and concatenates them with the input: C -> 2C channels, same H x W
(1 x C x 64 x 64 in, 1 x 2C x 64 x 64 out).

PSPNet: ResNet (output stride 8: layers 3 and 4 dilated), PSP on c5, a 3x3 conv
bottleneck (2C -> 512 at full width) + dropout 0.1 + 1x1 classifier, bilinear upsampling to
the input size. An auxiliary FCN head on c4 (3x3 conv -> 256, dropout, 1x1) adds deep
supervision in training (loss weight 0.4, in ``common.losses.SegLoss``): in train mode
the model returns ``[main, aux]``, in eval mode the main logits only.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn

from .backbones.resnet import ResNet
from .layers import ConvBNReLU, SegHead, resize_to
from .registry import register


class PSPModule(nn.Layer):
    """Pyramid pooling: (N, C, H, W) -> (N, C + len(bins) * C // len(bins), H, W) = 2C for
    C divisible by 4. Any H, W (a map smaller than a bin count is pooled with overlapping bins).

    Args:
        in_channels: C.
        bins: output sides of the adaptive average pools (the paper's 1, 2, 3, 6).
    """

    def __init__(self, in_channels, bins=(1, 2, 3, 6)):
        super().__init__()
        out = in_channels // len(bins)
        self.bins = tuple(bins)
        self.stages = nn.LayerList([
            nn.Sequential(nn.AdaptiveAvgPool2D(b), ConvBNReLU(in_channels, out, 1)) for b in bins])
        self.out_channels = in_channels + out * len(bins)

    def forward(self, x):
        size = x.shape[-2:]
        return paddle.concat([x] + [resize_to(stage(x), size) for stage in self.stages], axis=1)


class PSPNet(nn.Layer):
    """PSPNet on ``ResNet(depth, width, output_stride)``; ``psp=False`` drops the pyramid
    (the same network without global context, the ablation of Day 3). ``head_channels``
    is the bottleneck conv's width (default the paper's 512 at width 64); PaddleSeg 2.8's
    PSPNet uses 1024 (``pp_out_channels``), which makes that 3x3 conv 37.7 M of its 67.9 M
    parameters. The aux head keeps ``256 * width // 64`` channels either way.

    Args:
        num_classes: K, the logits' channels.
        depth: ResNet depth (18, 34, 50, 101, 152).
        width: ResNet's first channel count (64 full size).
        output_stride: 8 (the paper's), 16 or 32; below 32 the last stages are dilated.
        bins: the pyramid's pool sizes.
        aux: add the auxiliary FCN head on c4 (train mode returns ``[main, aux]``).
        psp: use the pyramid (False: the ablation without global context).
        dropout: before the classifiers.
        pretrained: local ResNet state-dict file for the backbone.
        head_channels: the bottleneck conv's width (default ``512 * width // 64``).
    """

    def __init__(self, num_classes, depth=50, width=64, output_stride=8, bins=(1, 2, 3, 6),
                 aux=True, psp=True, dropout=0.1, pretrained=None, head_channels=None):
        super().__init__()
        self.backbone = ResNet(depth, width, output_stride, pretrained=pretrained)
        c4, c5 = self.backbone.channels[2:]
        self.psp = PSPModule(c5, bins) if psp else None
        mid = head_channels or 512 * width // 64          # 512 at full width
        self.head = SegHead(self.psp.out_channels if psp else c5, mid, num_classes, dropout)
        self.aux_head = SegHead(c4, 256 * width // 64, num_classes, dropout) if aux else None

    def forward(self, x):
        size = x.shape[-2:]
        _, _, c4, c5 = self.backbone(x)
        y = self.psp(c5) if self.psp is not None else c5
        main = resize_to(self.head(y), size)
        if self.training and self.aux_head is not None:
            return [main, resize_to(self.aux_head(c4), size)]
        return main


@register("pspnet")
def pspnet(num_classes, **kwargs):
    """PSPNet; kwargs: depth=50 (18/34/50/101), width=64, output_stride=8, bins=(1, 2, 3, 6),
    aux=True, psp=True, pretrained=None (a local ResNet state-dict file), head_channels=None
    (the bottleneck's width; 1024 is PaddleSeg 2.8's)."""
    return PSPNet(num_classes, **kwargs)
