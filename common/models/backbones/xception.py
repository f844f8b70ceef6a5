"""Aligned Xception (Xception-65 of DeepLab V3+): every conv is depthwise-separable
(深度可分离卷积), max pooling is replaced by a separable conv with stride 2, and the
exit flow turns strides into dilation (空洞) for output stride 16 or 8.

Layout (channels at the paper's ``width=32``):
  stem      conv3x3/2 32, conv3x3 64
  entry     3 blocks of 3 separable convs: 128 (/2), 256 (/2), 728 (/2)
  middle    ``middle_blocks`` (16) residual blocks of 3 separable convs, 728
  exit      block 728-728-1024 (/2), then separable 1536, 1536, 2048
Each block has a 1x1 (strided) shortcut when its shape changes, else an identity.
``width`` scales every channel count (728 = 22.75 x 32 is rounded); ``width=4`` and
``middle_blocks=2`` train on a CPU.
"""
from __future__ import annotations

import paddle.nn as nn

from ..layers import ConvBNReLU, SeparableConvBNReLU, load_pretrained


class XceptionBlock(nn.Layer):
    """Three separable 3x3 convs; the last one carries the stride. Returns (out, skip),
    where ``skip`` is the feature before the stride (V3+ takes its low-level feature there)."""

    def __init__(self, in_ch, chs, stride=1, dilation=1, residual=True):
        super().__init__()
        c1, c2, c3 = chs
        self.sep1 = SeparableConvBNReLU(in_ch, c1, 3, 1, dilation)
        self.sep2 = SeparableConvBNReLU(c1, c2, 3, 1, dilation)
        self.sep3 = SeparableConvBNReLU(c2, c3, 3, stride, dilation, relu=False)
        self.shortcut = None
        if residual and (stride != 1 or in_ch != c3):
            self.shortcut = ConvBNReLU(in_ch, c3, 1, stride=stride, relu=False)
        self.residual = residual
        self.relu = nn.ReLU()

    def forward(self, x):
        skip = self.sep2(self.sep1(x))
        out = self.sep3(skip)
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return self.relu(out), skip


class Xception(nn.Layer):
    """Returns ``[low, c3, c4, c5]``: ``low`` at stride 4 (256 ch at full width, the V3+
    decoder's input), then the entry flow output (stride 8), the middle flow output and the
    exit flow output (stride ``output_stride``). ``self.channels`` lists their channels."""

    def __init__(self, width=32, middle_blocks=16, output_stride=16, in_channels=3, pretrained=None):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        self.output_stride = output_stride
        c = lambda k: max(1, round(k * width / 32))  # noqa: E731  (scale a paper channel count)
        # (stride, dilation) of the entry block 3 / middle flow, and of the exit flow
        s3, d_mid, s_exit, d_exit = {32: (2, 1, 2, 1), 16: (2, 1, 1, 2), 8: (1, 2, 1, 4)}[output_stride]
        self.stem = nn.Sequential(ConvBNReLU(in_channels, c(32), 3, stride=2), ConvBNReLU(c(32), c(64), 3))
        self.entry1 = XceptionBlock(c(64), [c(128)] * 3, stride=2)
        self.entry2 = XceptionBlock(c(128), [c(256)] * 3, stride=2)
        self.entry3 = XceptionBlock(c(256), [c(728)] * 3, stride=s3, dilation=1)
        self.middle = nn.LayerList([XceptionBlock(c(728), [c(728)] * 3, dilation=d_mid)
                                    for _ in range(middle_blocks)])
        self.exit1 = XceptionBlock(c(728), [c(728), c(1024), c(1024)], stride=s_exit, dilation=d_mid)
        self.exit2 = XceptionBlock(c(1024), [c(1536), c(1536), c(2048)], dilation=d_exit, residual=False)
        self.channels = [c(256), c(728), c(728), c(2048)]
        if pretrained:
            load_pretrained(self, pretrained)

    def forward(self, x):
        x = self.stem(x)
        x, _ = self.entry1(x)
        x, low = self.entry2(x)
        c3, _ = self.entry3(x)
        x = c3
        for block in self.middle:
            x, _ = block(x)
        c4 = x
        x, _ = self.exit1(x)
        c5, _ = self.exit2(x)
        return [low, c3, c4, c5]
