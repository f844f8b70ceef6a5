"""Receptive field (感受野): the region of the input that can change one output unit.

Two ways to get it, which the tests check against each other:

- ``receptive_field(layers)``: the arithmetic, layer by layer. A layer with kernel k,
  stride s, dilation d and padding p has an effective kernel ``k_eff = d (k - 1) + 1``
  and updates
      rf    <- rf + (k_eff - 1) * jump        (size of the region, in input pixels)
      start <- start + ((k_eff - 1) / 2 - p) * jump   (centre of the first unit's region)
      jump  <- jump * s                       (input pixels between neighbouring units)
  Unit i of a layer then sees input pixels ``start + i * jump +- (rf - 1) / 2``.
- ``empirical_receptive_field(model, input_size)``: back-propagate a gradient of one from
  the centre output unit and see which input pixels receive a nonzero gradient. Weights
  are set to positive constants (and max pooling to average pooling, which routes
  gradient to every pixel of its window), so no path cancels another.

Only local operations (convolution, pooling) are described: each widens the region by
a fixed amount, so the receptive field grows linearly with depth (and geometrically only
through strides). Global pooling, as in PSPNet, sees the whole image at once.

Residual networks: a block's output is the sum of its main path and its shortcut; the
shortcut (1x1 conv) sees a sub-region of what the main path sees, so the description
follows the main path and skips layers named ``downsample``.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn as nn


@dataclass(frozen=True)
class LayerSpec:
    """A local layer: ``kind`` 'conv' or 'pool' (pooling is drawn differently, computed alike)."""
    name: str
    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0
    kind: str = "conv"


def conv(kernel=3, stride=1, dilation=1, padding=None, name=None):
    """A conv LayerSpec; ``padding=None`` means 'same' padding ``dilation * (kernel - 1) // 2``.

    Args:
        kernel: kernel side k.
        stride: stride.
        dilation: atrous rate.
        padding: zeros per side; None for 'same'.
        name: row label; default e.g. ``conv3x3 s2 d2``.

    Returns:
        LayerSpec of kind 'conv'.
    """
    p = dilation * (kernel - 1) // 2 if padding is None else padding
    return LayerSpec(name or f"conv{kernel}x{kernel}" + (f" s{stride}" if stride > 1 else "")
                     + (f" d{dilation}" if dilation > 1 else ""), kernel, stride, dilation, p)


def pool(kernel=2, stride=None, padding=0, name=None):
    """A pooling LayerSpec (stride defaults to the kernel).

    Args:
        kernel: window side.
        stride: stride; None for ``kernel``.
        padding: padding per side.
        name: row label; default e.g. ``pool2x2 s2``.

    Returns:
        LayerSpec of kind 'pool'.
    """
    stride = kernel if stride is None else stride
    return LayerSpec(name or f"pool{kernel}x{kernel} s{stride}", kernel, stride, 1, padding, "pool")


def _as_spec(layer, i):
    if isinstance(layer, LayerSpec):
        return layer
    if isinstance(layer, dict):
        return LayerSpec(**{"name": f"layer{i + 1}", **layer})
    layer = tuple(layer)
    if isinstance(layer[0], str):
        return LayerSpec(*layer)
    return LayerSpec(f"layer{i + 1}", *layer)


def receptive_field(layers, input_size=None):
    """Receptive field after each layer.

    Args:
        layers: LayerSpec, dicts with kernel/stride/dilation/padding, or tuples
            ``(kernel, stride, dilation, padding)`` (optionally with a leading name).
        input_size: side of the square input; None leaves out the ``size`` column.

    Returns:
        list of dict rows (one per layer): name, kernel, stride, dilation, padding, ``rf``,
        ``jump`` (stride to the input), ``start`` (centre of unit 0's region, in input
        pixels), and ``size`` (the layer's output side) when ``input_size`` is given.
    """
    rf, jump, start, size = 1, 1, 0.0, input_size
    rows = []
    for i, layer in enumerate(layers):
        s = _as_spec(layer, i)
        k_eff = s.dilation * (s.kernel - 1) + 1
        rf += (k_eff - 1) * jump
        start += ((k_eff - 1) / 2 - s.padding) * jump
        jump *= s.stride
        row = dict(name=s.name, kernel=s.kernel, stride=s.stride, dilation=s.dilation,
                   padding=s.padding, rf=rf, jump=jump, start=start)
        if size is not None:
            size = (size + 2 * s.padding - k_eff) // s.stride + 1
            if size < 1:
                raise ValueError(f"input side {input_size} is too small: nothing is left "
                                 f"after layer {i + 1} ({s.name})")
            row["size"] = size
        rows.append(row)
    return rows


def format_table(rows):
    """The rows of ``receptive_field`` as a fixed-width text table.

    Args:
        rows: the list ``receptive_field`` returns.

    Returns:
        str, one line per layer under a header.
    """
    keys = ["name", "kernel", "stride", "dilation", "padding", "rf", "jump", "start"]
    keys += ["size"] if rows and "size" in rows[0] else []
    width = max([len(k) for k in keys[:1]] + [len(str(r["name"])) for r in rows]) + 2
    lines = ["name".ljust(width) + "".join(f"{k:>9}" for k in keys[1:])]
    for r in rows:
        lines.append(str(r["name"]).ljust(width) + "".join(
            f"{r[k]:>9g}" if isinstance(r[k], float) else f"{r[k]:>9}" for k in keys[1:]))
    return "\n".join(lines)


def theoretical_extent(layers, input_size, index=None):
    """(lo, hi) input pixels (inclusive, clipped to the image) seen by output unit ``index``
    (default: the centre unit, ``size // 2``) along one side of ``input_size`` pixels.

    Args:
        layers: layer descriptions, as for ``receptive_field``.
        input_size: side of the square input.
        index: output unit along one side; None for the centre one.

    Returns:
        (lo, hi) ints, inclusive.
    """
    last = receptive_field(layers, input_size)[-1]
    i = last["size"] // 2 if index is None else index
    centre, half = last["start"] + i * last["jump"], (last["rf"] - 1) / 2
    return max(0, math.ceil(centre - half)), min(input_size - 1, math.floor(centre + half))


def _pair(v, what):
    if isinstance(v, str):
        raise ValueError(f"padding {v!r} of {what} cannot be described by a number")
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if len(set(v)) != 1:
        raise ValueError(f"{what} is not square/symmetric ({v}); describe it by hand")
    return int(v[0])


def layers_of(model, skip=("downsample",)):
    """LayerSpecs of the convolutions and poolings of ``model``, in registration order
    (= execution order for the course's encoders), leaving out sublayers whose name
    contains one of ``skip`` (residual shortcuts). Transposed convs and adaptive/global
    pooling are refused: they are not the local layers this arithmetic describes.

    Args:
        model: a ``paddle.nn.Layer`` (an encoder: only local layers).
        skip: substrings of sublayer names to leave out.

    Returns:
        list of LayerSpec named by the sublayers' names.
    """
    specs = []
    for name, layer in model.named_sublayers():
        if any(s in name for s in skip):
            continue
        if isinstance(layer, (nn.Conv2DTranspose, nn.AdaptiveAvgPool2D, nn.AdaptiveMaxPool2D)):
            raise ValueError(f"{name} ({type(layer).__name__}) is not a local layer; pass the "
                             "encoder only")
        if isinstance(layer, nn.Conv2D):
            specs.append(LayerSpec(name, _pair(layer._kernel_size, name), _pair(layer._stride, name),
                                   _pair(layer._dilation, name), _pair(layer._padding, name)))
        elif isinstance(layer, (nn.MaxPool2D, nn.AvgPool2D)):
            k = _pair(layer.ksize, name)
            stride = k if layer.stride is None else _pair(layer.stride, name)
            specs.append(LayerSpec(name, k, stride, 1, _pair(layer.padding, name), "pool"))
    return specs


def unet_encoder_layers(depth=4, padding="valid"):
    """The U-Net contracting path by hand: two conv3x3 per level, a 2x2 pool between levels.

    Args:
        depth: number of 2x2 poolings (levels 0..depth).
        padding: ``'valid'`` (the paper's, no padding) or ``'same'`` (padding 1).

    Returns:
        list of LayerSpec.
    """
    p = {"valid": 0, "same": 1}[padding]
    specs = []
    for level in range(depth + 1):
        if level:
            specs.append(pool(2, name=f"down{level} pool2x2"))
        specs += [conv(3, padding=p, name=f"level{level} conv3x3 #{j + 1}") for j in (0, 1)]
    return specs


def resnet_layers(depth=18, output_stride=32):
    """The main path of the course's ResNet (stem, then each block's convs) by hand."""
    counts, bottleneck = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False),
                          50: ((3, 4, 6, 3), True), 101: ((3, 4, 23, 3), True)}[depth]
    plan = {32: [(1, 1), (2, 1), (2, 1), (2, 1)], 16: [(1, 1), (2, 1), (2, 1), (1, 2)],
            8: [(1, 1), (2, 1), (1, 2), (1, 4)]}[output_stride]
    specs = [conv(7, 2, padding=3, name="stem conv7x7 s2"), pool(3, 2, 1, name="stem maxpool3x3 s2")]
    prev = 1
    for stage, (n, (stride, dil)) in enumerate(zip(counts, plan), start=1):
        for b in range(n):
            # The first block of a dilated stage keeps the previous dilation (resnet.py).
            d = (prev if dil > 1 else 1) if b == 0 else dil
            s = stride if b == 0 else 1
            tag = f"layer{stage}.{b}"
            if bottleneck:
                specs += [conv(1, name=f"{tag} 1x1"), conv(3, s, d, name=f"{tag} 3x3"),
                          conv(1, name=f"{tag} 1x1'")]
            else:
                specs += [conv(3, s, d, name=f"{tag} 3x3"), conv(3, 1, d, name=f"{tag} 3x3'")]
        prev = dil
    return specs


def build_stack(layers):
    """A one-channel ``nn.Sequential`` of convs (each + ReLU) and average pools.

    Args:
        layers: layer descriptions (``LayerSpec`` or (kernel, stride, dilation, padding)).

    Returns:
        ``nn.Sequential`` whose convs have these kernels, strides, dilations and paddings.
    """
    mods = []
    for i, layer in enumerate(layers):
        s = _as_spec(layer, i)
        if s.kind == "pool":
            mods.append(nn.AvgPool2D(s.kernel, s.stride, s.padding))
        else:
            mods += [nn.Conv2D(1, 1, s.kernel, s.stride, s.padding, s.dilation), nn.ReLU()]
    return nn.Sequential(*mods)


def _constant_copy(model):
    """A float64 copy in eval mode with positive constant weights, identity BN and max
    pooling replaced by average pooling, so that every path carries a positive gradient."""
    net = copy.deepcopy(model)
    for parent in [net] + [m for _, m in net.named_sublayers()]:
        for name, child in list(parent._sub_layers.items()):
            if isinstance(child, nn.MaxPool2D):
                setattr(parent, name, nn.AvgPool2D(child.ksize, child.stride, child.padding,
                                                   ceil_mode=child.ceil_mode))
    net.to(dtype="float64")
    for layer in net.sublayers(include_self=True):
        if isinstance(layer, (nn.Conv2D, nn.Conv2DTranspose)):
            fan = int(np.prod(layer.weight.shape[1:]))
            layer.weight.set_value(paddle.full_like(layer.weight, 1.0 / fan))
            if layer.bias is not None:
                layer.bias.set_value(paddle.zeros_like(layer.bias))
        elif isinstance(layer, nn.layer.norm._BatchNormBase):
            for p, v in ((layer.weight, 1.0), (layer.bias, 0.0), (layer._mean, 0.0), (layer._variance, 1.0)):
                p.set_value(paddle.full_like(p, v))
    net.eval()
    return net


def _first_in_channels(model):
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, nn.Conv2D):
            return layer._in_channels
    return 1


def empirical_receptive_field(model_or_layers, input_size, index=None):
    """Measure the receptive field of one output unit (the centre one by default) by
    back-propagation.

    Args:
        model_or_layers: a Layer (its output, or the last of a list of outputs, is used)
            or a list of layer descriptions (built with ``build_stack``).
        input_size: side of the square input.
        index: (row, col) of the output unit; None for the centre. A network with
            transposed convolutions (a U-Net's decoder) is not shift-invariant, so its
            units' fields differ.

    Returns:
        dict: ``rows`` / ``cols`` (lo, hi) inclusive extents of the pixels with a nonzero
        gradient, ``size`` (their height), ``out_size`` and ``index`` (the output side and
        the unit used) and ``grad`` (H, W) float64, the gradient magnitude (its bell
        shape is the *effective* receptive field).
    """
    model = model_or_layers if isinstance(model_or_layers, nn.Layer) else build_stack(model_or_layers)
    net = _constant_copy(model)
    x = paddle.ones([1, _first_in_channels(net), input_size, input_size], dtype="float64")
    x.stop_gradient = False
    y = net(x)
    y = y[-1] if isinstance(y, (list, tuple)) else y
    oh, ow = y.shape[-2:]
    i, j = (oh // 2, ow // 2) if index is None else index
    if not (0 <= i < oh and 0 <= j < ow):
        raise ValueError(f"index {index!r} is outside the {oh}x{ow} output")
    y[0, :, i, j].sum().backward()
    grad = x.grad.abs().sum(axis=[0, 1]).numpy()
    rows, cols = np.nonzero(grad.any(1))[0], np.nonzero(grad.any(0))[0]
    return dict(rows=(int(rows.min()), int(rows.max())), cols=(int(cols.min()), int(cols.max())),
                size=int(rows.max() - rows.min() + 1), out_size=(oh, ow), index=(i, j), grad=grad)
