"""VGG16, the classification network FCN (Day 2) and DeepLab V1 (Day 4) start from.

Five blocks of 3x3 conv + ReLU (2, 2, 3, 3, 3 convs; channels w, 2w, 4w, 8w, 8w with
``width`` w = 64 in the paper, 8-16 for a CPU), each followed by a 2x2/2 max pool, so the
five pooled maps have strides 2, 4, 8, 16, 32. ``forward`` returns them all:
``[pool1, pool2, pool3, pool4, pool5]`` (FCN uses pool3/pool4/pool5), plus ``fc7`` at the
end when ``fc=True``; ``self.channels`` lists their channel counts.

Options:
  ``fc=True``: the classifier's FC6/FC7 as convolutions (FC层 -> 卷积): FC6 a 7x7 conv
      (padding 3, so the map keeps its size; the paper's reference code pads the input by 100 instead),
      FC7 a 1x1 conv, each + ReLU + dropout; ``fc_channels`` defaults to 64 * width (4096).
  ``deeplab=True``: DeepLab V1's layout, output stride 8: pools 1-3 are 3x3/2 with padding
      1, pools 4-5 are 3x3 with stride 1 (padding 1), and block 5's convs have dilation 2
      (空洞卷积) so their field of view matches the stride-16 map they replaced.
  ``batch_norm=True``: conv + BN + ReLU (paddle.vision's ``vgg16(batch_norm=True)``);
      trains from scratch in a few hundred steps, which plain VGG does not.
  ``pretrained``: a local file of paddle.vision's ``vgg16(...).state_dict()`` (same
      ``batch_norm``; ``width=64``). Names are mapped by ``vgg_key_map``; FC6/FC7's Linear
      weights are reshaped into the conv kernels; the 1000-class FC8 is dropped.
"""
from __future__ import annotations

import os
import re

import numpy as np
import paddle
import paddle.nn as nn

from ...ops import fc_weight_to_conv

CONVS_PER_BLOCK = (2, 2, 3, 3, 3)


def vgg_key_map(batch_norm=False):
    """A function mapping paddle.vision VGG16 state-dict keys to ours (None = dropped).

    ``features.{i}.*`` -> ``stage{b}.{j}.*`` (paddle.vision numbers conv[, bn], relu and pool
    layers in one Sequential; ours has one Sequential per block, pools apart);
    ``classifier.0`` -> ``fc6``, ``classifier.3`` -> ``fc7``; ``classifier.6`` (FC8) -> None.

    Args:
        batch_norm: whether the checkpoint is ``vgg16(batch_norm=True)``'s.
    Returns:
        ``key_map(key) -> our key or None``.
    """
    per_conv = 3 if batch_norm else 2
    table, i = {}, 0
    for b, n in enumerate(CONVS_PER_BLOCK, start=1):
        for j in range(n * per_conv):
            table[i + j] = f"stage{b}.{j}"
        i += n * per_conv + 1                       # + the pool
    fc = {"0": "fc6", "3": "fc7"}

    def key_map(key):
        m = re.match(r"features\.(\d+)\.(.+)", key)
        if m and int(m.group(1)) in table:
            return f"{table[int(m.group(1))]}.{m.group(2)}"
        m = re.match(r"classifier\.(\d+)\.(.+)", key)
        if m and m.group(1) in fc:
            return f"{fc[m.group(1)]}.0.{m.group(2)}"
        return None
    return key_map


class VGG16(nn.Layer):
    """VGG16 features (see the module docstring for the options).

    Args:
        width: channels of block 1 (64 in the paper).
        in_channels: image channels.
        batch_norm: conv + BN + ReLU instead of conv + ReLU.
        fc: append FC6/FC7 as convolutions.
        fc_channels: FC6/FC7 channels (default 64 * width).
        dropout: dropout after FC6 and FC7.
        deeplab: DeepLab V1's output-stride-8 layout.
        pretrained: a local paddle.vision VGG16 state-dict file, or None.
    """

    def __init__(self, width=64, in_channels=3, batch_norm=False, fc=False, fc_channels=None,
                 dropout=0.5, deeplab=False, pretrained=None):
        super().__init__()
        self.width, self.batch_norm, self.deeplab = width, batch_norm, deeplab
        chans = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        c = in_channels
        for b, (n, ch) in enumerate(zip(CONVS_PER_BLOCK, chans), start=1):
            dil = 2 if (deeplab and b == 5) else 1
            layers = []
            for _ in range(n):
                layers.append(nn.Conv2D(c, ch, 3, padding=dil, dilation=dil))
                if batch_norm:
                    layers.append(nn.BatchNorm2D(ch))
                layers.append(nn.ReLU())
                c = ch
            setattr(self, f"stage{b}", nn.Sequential(*layers))
            if deeplab:
                pool = nn.MaxPool2D(3, stride=2 if b <= 3 else 1, padding=1)
            else:
                pool = nn.MaxPool2D(2, stride=2)
            setattr(self, f"pool{b}", pool)
        self.channels = list(chans)
        self.strides = [2, 4, 8, 8, 8] if deeplab else [2, 4, 8, 16, 32]
        self.fc6 = self.fc7 = None
        if fc:
            fc_channels = fc_channels or 64 * width
            self.fc6 = nn.Sequential(nn.Conv2D(c, fc_channels, 7, padding=3), nn.ReLU(),
                                     nn.Dropout(dropout))
            self.fc7 = nn.Sequential(nn.Conv2D(fc_channels, fc_channels, 1), nn.ReLU(),
                                     nn.Dropout(dropout))
            self.channels.append(fc_channels)
            self.strides.append(self.strides[-1])
        if pretrained:
            self.load_paddle_vision(pretrained)

    def forward(self, x):
        feats = []
        for b in range(1, 6):
            x = getattr(self, f"pool{b}")(getattr(self, f"stage{b}")(x))
            feats.append(x)
        if self.fc6 is not None:
            feats.append(self.fc7(self.fc6(x)))
        return feats

    def load_paddle_vision(self, path):
        """Load a paddle.vision VGG16 state dict from the local file ``path``; returns the
        list of our parameters it did not provide (FC6/FC7 when the file has none)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"pretrained weights not found: {path}")
        key_map = vgg_key_map(self.batch_norm)
        own = self.state_dict()
        new = {}
        for key, value in paddle.load(path).items():
            ours = key_map(key)
            if ours is None or ours not in own:
                continue
            value = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
            if ours.endswith("weight") and value.ndim == 2:       # a Linear -> a conv kernel
                out_ch, in_ch, kh, kw = own[ours].shape
                value = fc_weight_to_conv(value, in_shape=(in_ch, kh, kw))
            if list(value.shape) != list(own[ours].shape):
                raise ValueError(f"{path}: {key} has shape {list(value.shape)}, our {ours} "
                                 f"expects {list(own[ours].shape)} (width=64? batch_norm?)")
            new[ours] = value
        if not new:
            raise ValueError(f"{path}: no paddle.vision VGG16 parameters found "
                             f"(batch_norm={self.batch_norm})")
        self.set_state_dict(new)
        return sorted(set(own) - set(new))
