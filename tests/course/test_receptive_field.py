"""Receptive-field arithmetic against known values and against back-propagation."""
import paddle.nn as nn
import pytest

from common.course import receptive_field as rf
from common.course import widgets
from common.models.backbones.resnet import ResNet
from common.models.unet import UNet


def _geometry(specs):
    return [(s.kernel, s.stride, s.dilation, s.padding) for s in specs]


def test_arithmetic_known_values():
    # VGG16 up to pool5: 212 pixels, stride 32 (Araujo et al., Distill 2019).
    vgg = []
    for n in (2, 2, 3, 3, 3):
        vgg += [rf.conv(3)] * n + [rf.pool(2)]
    last = rf.receptive_field(vgg, 224)[-1]
    assert (last["rf"], last["jump"], last["size"]) == (212, 32, 7)
    # The paper's U-Net: 572 -> bottom 28x28 with a 140-pixel field, 16 pixels apart.
    last = rf.receptive_field(rf.unet_encoder_layers(4, "valid"), 572)[-1]
    assert (last["rf"], last["jump"], last["size"], last["start"]) == (140, 16, 28, 69.5)
    # Tuples and dicts work too; a dilated 3x3 is a 5x5.
    assert rf.receptive_field([(3, 1, 2, 2)])[-1]["rf"] == 5
    assert rf.receptive_field([dict(kernel=3, stride=2)])[-1]["jump"] == 2
    with pytest.raises(ValueError, match="too small"):
        rf.receptive_field(vgg, 16)


@pytest.mark.parametrize("depth,os", [(18, 32), (18, 8), (50, 16), (101, 8)])
def test_resnet_description_derived_from_the_layer(depth, os):
    net = ResNet(depth, width=2, output_stride=os)
    assert _geometry(rf.layers_of(net)) == _geometry(rf.resnet_layers(depth, os))


def test_unet_encoder_description_derived_from_the_layer():
    for padding in ("valid", "same"):
        u = UNet(2, width=2, padding=padding)
        enc = nn.Sequential(u.inc, *u.downs)
        assert _geometry(rf.layers_of(enc)) == _geometry(rf.unet_encoder_layers(4, padding))
    with pytest.raises(ValueError, match="not a local layer"):
        rf.layers_of(UNet(2, width=2))                       # its decoder: transposed convs


def _agree(model, layers, size):
    emp = rf.empirical_receptive_field(model, size)
    lo, hi = rf.theoretical_extent(layers, size)
    assert emp["out_size"][0] == rf.receptive_field(layers, size)[-1]["size"]
    assert emp["rows"] == (lo, hi) and emp["cols"] == (lo, hi), (emp["rows"], (lo, hi))
    return emp


def test_calculator_equals_backprop():
    # 1) a stack with stride, dilation, pooling and an unpadded conv
    stack = [rf.conv(3), rf.conv(3, 2), rf.conv(3, dilation=2), rf.pool(2), rf.conv(5, padding=0)]
    emp = _agree(stack, stack, 41)
    assert emp["size"] == rf.receptive_field(stack)[-1]["rf"] == 31    # inside the image
    # 2) the U-Net encoder (valid), a real Layer with BN and max pooling
    u = UNet(2, width=2, padding="valid")
    enc = nn.Sequential(u.inc, *u.downs)
    assert _agree(enc, rf.layers_of(enc), 200)["size"] == 140
    # 3) ResNet-18 (residual blocks, 7x7 stem, max pool): field 435 inside a 480 input
    net = ResNet(18, width=4)
    assert _agree(net, rf.layers_of(net), 480)["size"] == 435
    # 4) dilated ResNet-50 at output stride 8, field clipped by the image border
    net = ResNet(50, width=2, output_stride=8)
    _agree(net, rf.layers_of(net), 96)


def test_widget_callback():
    out = widgets.rf_demo("VGG block (2 conv + pool)", n_layers=2, kernel=3, stride=2,
                          dilation=1, show=False)
    expected = rf.receptive_field(widgets.rf_stack("VGG block (2 conv + pool)", 2, 3, 2, 1))[-1]
    assert out["rf"] == expected["rf"] == 18 and out["jump"] == 8
    assert out["empirical_size"] == out["rf"]                # the default input holds the field
    widgets.rf_demo("U-Net levels 0-1", n_layers=1, dilation=3, show=True)   # draws, prints
    with pytest.raises(ValueError, match="empty"):
        widgets.rf_demo("none", n_layers=0, show=False)


def test_a_whole_unet_is_not_shift_invariant():
    """The valid U-Net's transposed convs give an even and an odd output one parent: a unit's
    field depends on its position (188 or 204 pixels at depth 4), and is not centred on it."""
    u = UNet(1, in_channels=1, width=1, padding="valid")

    class Raw(nn.Layer):                # the valid network without its pad-and-crop
        def __init__(self):
            super().__init__()
            self.u = u

        def forward(self, x):
            feats = self.u.encode(x)
            y = feats.pop()
            for up in self.u.ups:
                y = up(y, feats.pop())
            return self.u.head(y)

    net = Raw()
    widths = {o: rf.empirical_receptive_field(net, 372, index=(90, o))["cols"] for o in (84, 96)}
    assert widths == {84: (80, 283), 96: (96, 283)}          # 204 and 188 pixels, tile coordinates
    with pytest.raises(ValueError, match="outside"):
        rf.empirical_receptive_field(net, 372, index=(0, 500))
