"""FCN (Long, Shelhamer, Darrell, CVPR 2015): a classification network made fully
convolutional (全卷积网络), Day 2.

VGG16 with FC6/FC7 as convolutions gives class scores at stride 32 (``score_fr``, a 1x1
conv). Up-sampling them 32x gives FCN-32s. FCN-16s first up-samples 2x and adds 1x1-conv
scores of pool4 (stride 16) before a 16x up-sampling; FCN-8s also adds scores of pool3
(stride 8) and up-samples 8x. The skips bring back the detail that stride 32 lost.

Up-sampling (``upsample=``):
  'transpose': ``Conv2DTranspose`` with kernel 2s, stride s, padding s/2, initialised to
      bilinear interpolation (``layers.bilinear_kernel``); the in-network 2x layers then learn,
      the final one stays fixed bilinear (``learn_final=False``), as in the paper (Section 4.3,
      "Dense Prediction");
  'bilinear': fixed bilinear interpolation (``F.interpolate``), nothing to learn.
The skip score layers start at zero (as in the paper), so FCN-16s/8s start out as FCN-32s.

Any input size: the input is zero-padded at the bottom and right to a multiple of 32
(zero = the mean colour after normalisation), so every pool halves exactly and every
up-sampling lands on the padded size; the logits are then cropped back to (H, W). (The
paper's reference code pads by 100 and crops with offsets; FC6 here uses padding 3 instead.)
"""
from __future__ import annotations

import paddle.nn as nn
import paddle.nn.functional as F

from .backbones.vgg import VGG16
from .layers import bilinear_kernel
from .registry import register


class Upsample(nn.Layer):
    """Up-sample class scores by ``factor``: a bilinear-initialised transposed conv
    (learned if ``learn``, else fixed) or fixed bilinear interpolation."""

    def __init__(self, channels, factor, mode="transpose", learn=True):
        super().__init__()
        if mode not in ("transpose", "bilinear"):
            raise ValueError(f"upsample must be 'transpose' or 'bilinear', got {mode!r}")
        self.factor, self.mode = factor, mode
        if mode == "transpose":
            k = 2 * factor
            self.deconv = nn.Conv2DTranspose(channels, channels, k, stride=factor,
                                             padding=factor // 2, bias_attr=False)
            self.deconv.weight.set_value(bilinear_kernel(channels, channels, k))
            self.deconv.weight.stop_gradient = not learn      # the paper's final layer: fixed

    def forward(self, x):
        if self.mode == "transpose":
            return self.deconv(x)
        h, w = x.shape[-2:]
        return F.interpolate(x, size=(h * self.factor, w * self.factor), mode="bilinear",
                             align_corners=False)


def _zero_conv1x1(in_ch, out_ch):
    conv = nn.Conv2D(in_ch, out_ch, 1)
    conv.weight.set_value(conv.weight.numpy() * 0)
    return conv


class FCN(nn.Layer):
    """FCN-32s / 16s / 8s on VGG16.

    Args:
        num_classes: K.
        stride: 32, 16 or 8 (the finest skip used: none, pool4, pool4 + pool3).
        width: VGG's first channel count (64 paper; 8-16 for a CPU).
        fc_channels: FC6/FC7 channels (default 64 * width = 4096 in the paper).
        upsample: 'transpose' (bilinear init) or 'bilinear' (fixed interpolation).
        learn_final: with 'transpose', learn the final 32x/16x/8x layer too (paper: False,
            fixed bilinear; the 2x layers always learn).
        batch_norm: VGG with BN (trains from scratch much faster; paper: False).
        dropout: after FC6 and FC7 (paper: 0.5).
        pretrained: local paddle.vision ``vgg16`` state-dict file (width 64).
    """

    def __init__(self, num_classes, stride=8, width=64, fc_channels=None, upsample="transpose",
                 learn_final=False, batch_norm=False, dropout=0.5, pretrained=None):
        super().__init__()
        if stride not in (8, 16, 32):
            raise ValueError(f"stride must be 8, 16 or 32, got {stride}")
        self.stride = stride
        self.backbone = VGG16(width, batch_norm=batch_norm, fc=True, fc_channels=fc_channels,
                              dropout=dropout, pretrained=pretrained)
        c = self.backbone.channels                    # pool1..pool5, fc7
        self.score_fr = nn.Conv2D(c[5], num_classes, 1)
        if stride <= 16:
            self.score_pool4 = _zero_conv1x1(c[3], num_classes)
            self.up2_fr = Upsample(num_classes, 2, upsample)
        if stride == 8:
            self.score_pool3 = _zero_conv1x1(c[2], num_classes)
            self.up2_pool4 = Upsample(num_classes, 2, upsample)
        self.up_final = Upsample(num_classes, stride, upsample, learn=learn_final)

    def forward(self, x):
        h, w = x.shape[-2:]
        ph, pw = -h % 32, -w % 32
        if ph or pw:
            x = F.pad(x, [0, pw, 0, ph])              # [left, right, top, bottom]
        feats = self.backbone(x)
        score = self.score_fr(feats[5])               # stride 32
        if self.stride <= 16:
            score = self.up2_fr(score) + self.score_pool4(feats[3])          # stride 16
        if self.stride == 8:
            score = self.up2_pool4(score) + self.score_pool3(feats[2])       # stride 8
        return self.up_final(score)[:, :, :h, :w]


@register("fcn32s")
def fcn32s(num_classes, **kwargs):
    return FCN(num_classes, stride=32, **kwargs)


@register("fcn16s")
def fcn16s(num_classes, **kwargs):
    return FCN(num_classes, stride=16, **kwargs)


@register("fcn8s")
def fcn8s(num_classes, **kwargs):
    return FCN(num_classes, stride=8, **kwargs)
