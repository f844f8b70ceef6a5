"""A fully connected (FC) layer is a convolution (FC层:1*1卷积).

A Linear layer on a flattened (C, h, w) feature map computes, for each output unit, a
weighted sum over every input value: exactly what one conv with an h x w kernel computes
at one position. With h = w = 1 it is a 1x1 conv, which only changes the number of
channels; as a conv the same weights slide over a larger map and give a score map
instead of one score vector (the step from a classifier to an FCN).
"""
import numpy as np


def fc_weight_to_conv(weight, bias=None, in_shape=None):
    """Paddle Linear weights ``weight`` (C*h*w, out) [+ ``bias`` (out,)] -> conv weights
    (out, C, h, w) [and the same bias]. ``in_shape`` = (C, h, w) of the map the Linear
    saw flattened (default (in, 1, 1): a 1x1 conv). Paddle flattens in C, h, w order."""
    weight = np.asarray(weight, dtype=np.float32)
    n_in, n_out = weight.shape
    c, h, w = in_shape if in_shape is not None else (n_in, 1, 1)
    if c * h * w != n_in:
        raise ValueError(f"in_shape {in_shape} has {c * h * w} values, the Linear takes {n_in}")
    conv_w = weight.T.reshape(n_out, c, h, w)
    if bias is None:
        return conv_w
    return conv_w, np.asarray(bias, dtype=np.float32)


def fc_to_conv(linear, in_shape=None):
    """A ``paddle.nn.Conv2D`` with the weights of ``linear`` (a ``paddle.nn.Linear``):
    kernel (h, w) of ``in_shape`` (default 1x1), no padding.

    Args:
        linear: the ``paddle.nn.Linear`` to convert; weight (C*h*w, out).
        in_shape: (C, h, w) of the feature map the Linear saw flattened; default (in, 1, 1).

    Returns:
        ``paddle.nn.Conv2D`` (C -> out, kernel (h, w)) computing the same scores on that map.
    """
    import paddle

    weight = linear.weight.numpy()
    bias = None if linear.bias is None else linear.bias.numpy()
    conv_w = fc_weight_to_conv(weight, None, in_shape)
    conv = paddle.nn.Conv2D(conv_w.shape[1], conv_w.shape[0], conv_w.shape[2:],
                            bias_attr=None if bias is not None else False)
    conv.weight.set_value(conv_w)
    if bias is not None:
        conv.bias.set_value(bias)
    return conv
