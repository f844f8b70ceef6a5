"""ResNet with atrous (dilated) last stages and multi-grid: the backbone of PSPNet,
DeepLab V2/V3/V3+, the graph units of Day 5 and the instance models of Day 6.

Module names follow ``paddle.vision.models.resnet`` (conv1, bn1, layer1..layer4), so an
ImageNet state dict saved from paddle.vision loads with no key mapping (``pretrained=``).

``output_stride`` 32 is the classifier; 16 turns the stride of layer4 into dilation 2;
8 also turns layer3's stride into dilation 2 and layer4's into 4 (DeepLab/PSPNet). The
first block of a dilated stage keeps the previous dilation (as in the DeepLab reference
code) to avoid a sudden jump. ``multi_grid`` (V3) multiplies layer4's per-block dilation:
rates (1, 2, 4) at output stride 16 give dilations 2, 4, 8.
"""
from __future__ import annotations

import paddle.nn as nn

from ..layers import load_pretrained


class BasicBlock(nn.Layer):
    expansion = 1

    def __init__(self, in_ch, ch, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2D(in_ch, ch, 3, stride, padding=dilation, dilation=dilation, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(ch)
        self.conv2 = nn.Conv2D(ch, ch, 3, padding=dilation, dilation=dilation, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(ch)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class BottleneckBlock(nn.Layer):
    expansion = 4

    def __init__(self, in_ch, ch, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2D(in_ch, ch, 1, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(ch)
        self.conv2 = nn.Conv2D(ch, ch, 3, stride, padding=dilation, dilation=dilation, bias_attr=False)
        self.bn2 = nn.BatchNorm2D(ch)
        self.conv3 = nn.Conv2D(ch, ch * 4, 1, bias_attr=False)
        self.bn3 = nn.BatchNorm2D(ch * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


_DEPTHS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
           50: (BottleneckBlock, (3, 4, 6, 3)), 101: (BottleneckBlock, (3, 4, 23, 3)),
           152: (BottleneckBlock, (3, 8, 36, 3))}


class ResNet(nn.Layer):
    """ResNet-{18,34,50,101,152} returning ``[c2, c3, c4, c5]`` (strides 4, 8, and then
    8/16/32 depending on ``output_stride``). ``width`` is the channel count of the stem
    and layer1 (64 in the paper; 16 trains on a CPU). ``self.channels`` lists the output
    channels of the four features.

    Args:
        depth: 18, 34 (basic blocks), 50, 101 or 152 (bottlenecks).
        width: channels of the stem and layer1; later stages double it.
        output_stride: 32 (classification), 16 (layer4 dilated) or 8 (layer3 and layer4
            dilated, DeepLab/PSPNet).
        multi_grid: DeepLab V3's unit rates of layer4's three blocks, times its dilation.
        in_channels: image channels.
        pretrained: a local paddle.vision ResNet state-dict file, or None.
    """

    def __init__(self, depth=50, width=64, output_stride=32, multi_grid=(1, 1, 1),
                 in_channels=3, pretrained=None):
        super().__init__()
        if depth not in _DEPTHS:
            raise ValueError(f"depth must be one of {sorted(_DEPTHS)}, got {depth}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        block, counts = _DEPTHS[depth]
        self.depth, self.output_stride = depth, output_stride
        self.conv1 = nn.Conv2D(in_channels, width, 7, stride=2, padding=3, bias_attr=False)
        self.bn1 = nn.BatchNorm2D(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2D(3, stride=2, padding=1)
        # (stride, dilation) of layers 2..4 for each output stride
        plan = {32: [(2, 1), (2, 1), (2, 1)], 16: [(2, 1), (2, 1), (1, 2)],
                8: [(2, 1), (1, 2), (1, 4)]}[output_stride]
        self._in = width
        self.layer1 = self._make_layer(block, width, counts[0], 1, 1, 1)
        self.layer2 = self._make_layer(block, width * 2, counts[1], *plan[0], 1)
        self.layer3 = self._make_layer(block, width * 4, counts[2], *plan[1], plan[0][1])
        self.layer4 = self._make_layer(block, width * 8, counts[3], *plan[2], plan[1][1],
                                       multi_grid=multi_grid)
        self.channels = [width * k * block.expansion for k in (1, 2, 4, 8)]
        if pretrained:
            load_pretrained(self, pretrained)

    def _make_layer(self, block, ch, count, stride, dilation, prev_dilation, multi_grid=None):
        downsample = None
        if stride != 1 or self._in != ch * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2D(self._in, ch * block.expansion, 1, stride=stride, bias_attr=False),
                nn.BatchNorm2D(ch * block.expansion))
        if multi_grid is not None and any(g != 1 for g in multi_grid):
            rates = [dilation * multi_grid[i % len(multi_grid)] for i in range(count)]
        else:
            rates = [prev_dilation if dilation > 1 else 1] + [dilation] * (count - 1)
        layers = []
        for i, r in enumerate(rates):
            layers.append(block(self._in, ch, stride if i == 0 else 1, r, downsample if i == 0 else None))
            self._in = ch * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]
