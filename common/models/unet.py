"""U-Net (Ronneberger et al., 2015): an encoder-decoder "U" whose skips are concatenated.

Parts, each usable on its own (Day 3 builds the network from them):

- ``DoubleConv``: two conv3x3 (+BN) + ReLU;
- ``Down``: 2x2 max pool, then a DoubleConv that doubles the channels;
- ``Up``: 2x2 transposed conv (stride 2) that halves the channels, ``center_crop`` of the
  skip feature to the upsampled size, concatenation, DoubleConv;
- ``center_crop(x, size)``: the middle ``size`` window of an (N, C, H, W) tensor.

Two variants (``padding=``):

- ``'valid'``: the paper's unpadded convolutions. Every 3x3 conv loses a pixel on each
  side, so the skip features are larger than the upsampled maps and are centre-cropped.
  The output is smaller than the input (572 -> 388 in the paper). To return a map the
  size of the input, the input is first mirror-padded (the paper's *overlap-tile*
  strategy: the border context is reflected), to the smallest size whose pooled maps are
  all even and whose output covers the image; the output is then cropped.
- ``'same'``: padded convolutions (most modern code). The skip and upsampled maps agree
  when the input side is a multiple of ``2**depth``; any other input is mirror-padded up
  to the next multiple and the output cropped back.

So both variants take any H, W (odd sizes too) by *pad and crop*; no feature map is
resized. The default is ``'same'``, because ``'valid'`` pads a 96x96 training image
to 284x284 (8.7x the work); the notebook shows both.

Parameters of the default (width 64 -> 1024 channels, depth 4, BN, 3 in, 2 classes):
31,037,698 (about 31.0 M, as the paper's network counted with BN); PaddleSeg's U-Net
stops at 512 channels and has 13.4 M.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .registry import register


def center_crop(x, size):
    """The centred ``size`` = (h, w) window of ``x`` (N, C, H, W); (H - h) split with the
    extra pixel, if odd, at the bottom/right.

    Args:
        x: tensor (N, C, H, W).
        size: (h, w), at most (H, W).

    Returns:
        tensor (N, C, h, w), a view of ``x``'s middle.
    """
    h, w = size
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"cannot crop {H}x{W} to a larger {h}x{w}")
    top, left = (H - h) // 2, (W - w) // 2
    return x[:, :, top:top + h, left:left + w]


def mirror_pad(x, top, bottom, left, right):
    """Reflect-pad (N, C, H, W) by any amount (repeated reflection when the pad exceeds the
    side, which ``F.pad(mode='reflect')`` refuses); differentiable, via index_select.

    Args:
        x: tensor (N, C, H, W).
        top: rows added above.
        bottom: rows added below.
        left: columns added on the left.
        right: columns added on the right.

    Returns:
        tensor (N, C, H + top + bottom, W + left + right).
    """
    H, W = x.shape[-2:]
    rows = np.pad(np.arange(H), (top, bottom), mode="reflect")
    cols = np.pad(np.arange(W), (left, right), mode="reflect")
    x = paddle.index_select(x, paddle.to_tensor(rows), axis=2)
    return paddle.index_select(x, paddle.to_tensor(cols), axis=3)


class DoubleConv(nn.Sequential):
    """(conv3x3 -> [BN] -> ReLU) x 2. ``padding='valid'`` shrinks each side by 2 pixels.
    ``bias`` defaults to ``not bn`` (BN's shift makes a conv bias redundant)."""

    def __init__(self, in_ch, out_ch, padding="same", bn=True, bias=None):
        pad = {"same": 1, "valid": 0}[padding]
        bias = not bn if bias is None else bias
        layers = []
        for c in (in_ch, out_ch):
            layers.append(nn.Conv2D(c, out_ch, 3, padding=pad, bias_attr=bias,
                                    weight_attr=nn.initializer.KaimingNormal()))
            if bn:
                layers.append(nn.BatchNorm2D(out_ch))
            layers.append(nn.ReLU())
        super().__init__(*layers)


class Down(nn.Sequential):
    """2x2 max pool (stride 2) then DoubleConv: half the size, ``out_ch`` channels."""

    def __init__(self, in_ch, out_ch, padding="same", bn=True, bias=None):
        super().__init__(nn.MaxPool2D(2, 2), DoubleConv(in_ch, out_ch, padding, bn, bias))


class Up(nn.Layer):
    """2x2 transposed conv (stride 2, ``in_ch -> in_ch // 2``), centre-crop the skip to the
    upsampled size, concatenate [skip, up], DoubleConv to ``out_ch``."""

    def __init__(self, in_ch, out_ch, padding="same", bn=True):
        super().__init__()
        self.up = nn.Conv2DTranspose(in_ch, in_ch // 2, 2, stride=2)
        # The skip brings the other in_ch // 2 channels: the concat has in_ch again.
        self.conv = DoubleConv(in_ch, out_ch, padding, bn)

    def forward(self, x, skip):
        x = self.up(x)
        skip = center_crop(skip, x.shape[-2:])     # a no-op in the 'same' variant
        return self.conv(paddle.concat([skip, x], axis=1))


class UpResize(nn.Layer):
    """PaddleSeg's up step: bilinear resize to the skip's size, concatenate [up, skip]
    (``in_ch`` channels together), DoubleConv (with conv biases) to ``out_ch``."""

    def __init__(self, in_ch, out_ch, bn=True):
        super().__init__()
        self.conv = DoubleConv(in_ch, out_ch, "same", bn, bias=True)

    def forward(self, x, skip):
        x = F.interpolate(x, skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(paddle.concat([x, skip], axis=1))


def valid_output_size(size, depth=4):
    """Output side of the 'valid' U-Net for input side ``size``, or None when some map
    to be pooled has an odd side (its 2x2 pool would drop a row) or vanishes."""
    h = size - 4
    for _ in range(depth):
        if h < 2 or h % 2:
            return None
        h = h // 2 - 4
    if h < 1:
        return None
    for _ in range(depth):
        h = 2 * h - 4
    return h if h > 0 else None


def valid_input_size(size, depth=4):
    """Smallest input side of the 'valid' U-Net whose centred output covers ``size``
    pixels, and the margin (pixels lost on each side) between input and output.

    Args:
        size: the side the output must cover.
        depth: number of downsamplings.

    Returns:
        (input side, margin) ints; 572 and 92 for the paper's 388-pixel output at depth 4.
    """
    n = size
    while valid_output_size(n, depth) is None or valid_output_size(n, depth) < size:
        n += 1
    margin = (n - valid_output_size(n, depth)) // 2
    return n, margin


class UNet(nn.Layer):
    """U-Net with ``depth`` downsamplings and ``width * 2**i`` channels at level i
    (64 -> 1024 in the paper), BN optional, for any input size (see the module docstring).

    ``paddleseg=True`` builds PaddleSeg 2.8's layout instead (13.4 M parameters at width 64,
    against the paper's 31.0 M): the bottom keeps the level above's channels (512, not 1024),
    each up step resizes bilinearly (no transposed conv) and its DoubleConv already halves
    the channels to the next skip's, convs keep their biases beside BN, and the classifier
    is a 3x3 conv. Only with ``padding='same'`` and ``bn=True``.

    Args:
        num_classes: K, the logits' channels.
        in_channels: input channels.
        width: channels of level 0 (64 in the paper; 4-16 on a CPU).
        depth: number of 2x2 downsamplings (4 in the paper).
        padding: ``'same'`` (padded convs) or ``'valid'`` (the paper's, with overlap-tile).
        bn: BatchNorm after each conv (the paper has none).
        paddleseg: PaddleSeg 2.8's layout, as above.
    """

    def __init__(self, num_classes, in_channels=3, width=64, depth=4, padding="same", bn=True,
                 paddleseg=False):
        super().__init__()
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
        if paddleseg and (padding != "same" or not bn):
            raise ValueError("unet(paddleseg=True) needs padding='same' and bn=True")
        self.depth, self.padding = depth, padding
        ch = [width * 2 ** i for i in range(depth + 1)]
        if paddleseg:
            ch[-1] = ch[-2]
            self.inc = DoubleConv(in_channels, ch[0], padding, bn, bias=True)
            self.downs = nn.LayerList([Down(ch[i], ch[i + 1], padding, bn, bias=True)
                                       for i in range(depth)])
            # Up at level i takes [resized, skip], ch[i] channels each (the bottom has ch[-2]
            # too), and gives the next skip's width ch[i - 1] (ch[0] at the top).
            self.ups = nn.LayerList([UpResize(2 * ch[i], ch[max(i - 1, 0)], bn)
                                     for i in reversed(range(depth))])
            self.head = nn.Conv2D(ch[0], num_classes, 3, padding=1)
            return
        self.inc = DoubleConv(in_channels, ch[0], padding, bn)
        self.downs = nn.LayerList([Down(ch[i], ch[i + 1], padding, bn) for i in range(depth)])
        self.ups = nn.LayerList([Up(ch[i + 1], ch[i], padding, bn) for i in reversed(range(depth))])
        self.head = nn.Conv2D(ch[0], num_classes, 1)

    def encode(self, x):
        """Feature maps of the contracting path, shallow to deep (the skips, then the bottom)."""
        feats = [self.inc(x)]
        for down in self.downs:
            feats.append(down(feats[-1]))
        return feats

    def _pads(self, n):
        """(before, after) mirror padding of one side of ``n`` pixels."""
        if self.padding == "valid":
            total, margin = valid_input_size(n, self.depth)
            return margin, total - n - margin
        total = -(-n // 2 ** self.depth) * 2 ** self.depth
        return (total - n) // 2, total - n - (total - n) // 2

    def forward(self, x):
        H, W = x.shape[-2:]
        (top, bottom), (left, right) = self._pads(H), self._pads(W)
        if top or bottom or left or right:
            x = mirror_pad(x, top, bottom, left, right)
        feats = self.encode(x)
        y = feats.pop()
        for up in self.ups:
            y = up(y, feats.pop())
        y = self.head(y)
        # Valid: output pixel i sits over padded-input pixel i + margin = image pixel i.
        if self.padding == "valid":
            return y[:, :, :H, :W]
        return y[:, :, top:top + H, left:left + W]


@register("unet")
def unet(num_classes, **kwargs):
    """U-Net; kwargs: in_channels=3, width=64, depth=4, padding='same'|'valid', bn=True,
    paddleseg=False (PaddleSeg 2.8's layout, see ``UNet``)."""
    return UNet(num_classes, **kwargs)
