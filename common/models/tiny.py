"""A tiny fully convolutional network: the "model" of Day 1's training loop and the
trainer's tests (no batch norm, so data-parallel runs match single-process ones exactly)."""
import paddle.nn as nn

from .registry import register


class TinySegNet(nn.Layer):
    """conv3x3-ReLU blocks at full resolution, widening the receptive field by dilation,
    then a 1x1 classifier: logits the size of the input, any H and W.

    Args:
        num_classes: K, the logits' channels.
        in_channels: input channels.
        width: channels of every block.
        depth: number of blocks; block i has dilation 2**i (receptive field 2**(depth+1) - 1).
    """

    def __init__(self, num_classes, in_channels=3, width=16, depth=4):
        super().__init__()
        layers, c = [], in_channels
        for i in range(depth):
            d = 2 ** i
            layers += [nn.Conv2D(c, width, 3, padding=d, dilation=d), nn.ReLU()]
            c = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2D(width, num_classes, 1)

    def forward(self, x):
        return self.classifier(self.features(x))


@register("tiny")
def tiny(num_classes, **kwargs):
    return TinySegNet(num_classes, **kwargs)
