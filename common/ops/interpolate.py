"""Bilinear interpolation (双线性插值): interpolate along x, then along y.

Two conventions for where output pixel ``d`` samples the input:

* ``align_corners=False`` (half-pixel centres, OpenCV's ``INTER_LINEAR`` and Paddle's default
  ``align_mode=0``): ``src = (d + 0.5) * in / out - 0.5``, clamped at 0 so the first
  output pixels repeat the border instead of reading outside the image;
* ``align_corners=True``: the corner pixels of input and output coincide,
  ``src = d * (in - 1) / (out - 1)``.

One exception, Paddle's: an output axis of length 1 samples input index 0 (Paddle sets the
scale to 0), in both conventions; OpenCV samples the centre instead. We follow Paddle.
"""
import numpy as np

from ._util import pair


def source_coords(out_size, in_size, align_corners=False):
    """For each output index along one axis: left neighbour ``i0``, right ``i1`` and the
    weight ``t`` of the right one (so the value is ``(1 - t) * a[i0] + t * a[i1]``)."""
    d = np.arange(out_size, dtype=np.float64)
    if out_size == 1:                       # Paddle: scale 0, i.e. the first input pixel
        src = np.zeros(1)
    elif align_corners:
        src = d * (in_size - 1) / (out_size - 1)
    else:
        src = np.maximum((d + 0.5) * (in_size / out_size) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    t = (src - i0).astype(np.float32)
    return i0, i1, t


def bilinear_resize(x, size, align_corners=False):
    """Resize the last two axes of ``x`` ((H, W), (C, H, W) or (N, C, H, W)) to ``size``
    = (H_out, W_out) (an int means square), as ``paddle.nn.functional.interpolate(
    mode='bilinear', align_corners=...)``; with ``align_corners=False`` also as
    ``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` (except output sides of 1, see above).

    Two 1-D linear interpolations: first each row along x (width), then each column
    along y (height). Each is a gather of two neighbours and a weighted sum, for all
    pixels at once.

    Args:
        x: array (H, W), (C, H, W) or (N, C, H, W).
        size: (H_out, W_out), or an int for a square output.
        align_corners: sampling convention (see the module docstring); False as Paddle.

    Returns:
        float32 array of ``x``'s leading shape and (H_out, W_out).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"x must be (H, W), (C, H, W) or (N, C, H, W), got shape {x.shape}")
    out_h, out_w = pair(size, "size")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"size must be positive, got {(out_h, out_w)}")
    in_h, in_w = x.shape[-2:]
    # along x: every row at once
    j0, j1, tx = source_coords(out_w, in_w, align_corners)
    rows = x[..., j0] * (1 - tx) + x[..., j1] * tx                  # (..., H, W_out)
    # along y: every column of the row-interpolated image at once
    i0, i1, ty = source_coords(out_h, in_h, align_corners)
    ty = ty[:, None]
    return rows[..., i0, :] * (1 - ty) + rows[..., i1, :] * ty      # (..., H_out, W_out)
