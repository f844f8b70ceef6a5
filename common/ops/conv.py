"""Convolution (卷积) and its relatives, in NumPy.

* ``conv2d``: cross-correlation as Paddle computes it, by gathering every k x k window
  (stride tricks, no copy until the product) and one tensor product with the kernel.
* ``atrous_conv2d`` (空洞卷积): insert ``rate - 1`` zeros between kernel taps, then a
  plain ``conv2d``.
* ``transposed_conv2d`` (转置卷积): insert ``stride - 1`` zeros between input pixels,
  pad by ``k - 1 - padding``, convolve with the kernel rotated by 180 degrees (and its
  in/out channels swapped). ``transposed_conv2d_scatter`` computes the same thing by its
  definition (each input pixel adds a copy of the kernel, scaled by its value, to the
  output), and ``conv_matrix`` shows why it is called "transposed": a conv is a matrix
  ``C`` acting on the flattened image, and the transposed conv is ``C.T``.

Sizes: a conv shrinks (越卷越小), ``conv_output_size``; a transposed conv grows
(越变越大), ``transposed_conv_output_size``.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._util import as_batch, pair


def conv_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
    """Output length of a conv along one axis: ``(n + 2p - d(k-1) - 1) // s + 1``.

    Args:
        n: input length.
        kernel_size: kernel length k.
        stride: step s between windows.
        padding: zeros added at each end, p.
        dilation: spacing d between kernel taps.

    Returns:
        int, the output length.
    """
    return (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def transposed_conv_output_size(n, kernel_size, stride=1, padding=0, output_padding=0,
                                dilation=1):
    """Output length of a transposed conv: ``(n - 1)s - 2p + d(k-1) + output_padding + 1``
    (the input length of the conv it transposes).

    Args:
        n: input length.
        kernel_size: kernel length k.
        stride: zero insertion step s.
        padding: p cut from each end of the result.
        output_padding: extra length at the end (picks one of the sizes a strided conv maps
            to the same ``n``).
        dilation: spacing d between kernel taps.

    Returns:
        int, the output length.
    """
    return (n - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """2-D convolution of ``x`` (C, H, W) or (N, C, H, W) with ``w`` (C_out, C, kh, kw),
    as ``paddle.nn.functional.conv2d`` (cross-correlation, zero padding).

    Args:
        x: input array (C, H, W) or (N, C, H, W).
        w: kernel (C_out, C, kh, kw).
        b: optional bias (C_out,).
        stride: int or (sh, sw).
        padding: zeros on each side, int or (ph, pw).
        dilation: spacing between kernel taps, int or (dh, dw).

    Returns:
        float32 array (C_out, H_out, W_out), or (N, C_out, H_out, W_out) for a batch.
    """
    xb, undo = as_batch(x)
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 4 or w.shape[1] != xb.shape[1]:
        raise ValueError(f"w must be (C_out, {xb.shape[1]}, kh, kw), got shape {w.shape}")
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    kh, kw = w.shape[2:]
    xp = np.pad(xb, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)         # extent of a dilated kernel
    if xp.shape[2] < span[0] or xp.shape[3] < span[1]:
        raise ValueError(f"input {xb.shape[2:]} padded by {(ph, pw)} is smaller than the "
                         f"kernel's extent {span}")
    # (N, C, H_out, W_out, kh, kw): a view of every window, then keep every d-th tap
    win = sliding_window_view(xp, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))  # (N, H_out, W_out, C_out)
    y = y.transpose(0, 3, 1, 2)
    if b is not None:
        y = y + np.asarray(b, np.float32)[None, :, None, None]
    return undo(np.ascontiguousarray(y, dtype=np.float32))


def dilate_kernel(w, rate):
    """Insert ``rate - 1`` zeros between the taps of the last two axes of ``w``:
    a k x k kernel becomes ``(k - 1) * rate + 1`` square with the same weights.

    Args:
        w: kernel (..., kh, kw).
        rate: dilation rate, int or (rh, rw); 1 returns the kernel unchanged.

    Returns:
        float32 array (..., (kh - 1) * rh + 1, (kw - 1) * rw + 1).
    """
    w = np.asarray(w, dtype=np.float32)
    rh, rw = pair(rate, "rate")
    kh, kw = w.shape[-2:]
    out = np.zeros(w.shape[:-2] + ((kh - 1) * rh + 1, (kw - 1) * rw + 1), np.float32)
    out[..., ::rh, ::rw] = w
    return out


def atrous_conv2d(x, w, rate, b=None, stride=1, padding=0):
    """Atrous (dilated) conv: ``conv2d`` with the zero-dilated kernel ``dilate_kernel(w,
    rate)``; equals ``conv2d(..., dilation=rate)``. ``padding='same'`` keeps H, W (odd k).

    Args:
        x: input array (C, H, W) or (N, C, H, W).
        w: kernel (C_out, C, kh, kw) before dilation.
        rate: dilation rate, int or (rh, rw).
        b: optional bias (C_out,).
        stride: int or (sh, sw).
        padding: int, (ph, pw) or ``'same'``.

    Returns:
        float32 array (C_out, H_out, W_out), or (N, C_out, H_out, W_out) for a batch.
    """
    wd = dilate_kernel(w, rate)
    if isinstance(padding, str):
        if padding != "same":
            raise ValueError(f"padding must be an int, a pair or 'same', got {padding!r}")
        padding = ((wd.shape[2] - 1) // 2, (wd.shape[3] - 1) // 2)
    return conv2d(x, wd, b, stride=stride, padding=padding)


def zero_insert(x, stride):
    """Insert ``stride - 1`` zeros between neighbouring pixels of the last two axes."""
    sh, sw = pair(stride, "stride")
    h, w = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + ((h - 1) * sh + 1, (w - 1) * sw + 1), np.float32)
    out[..., ::sh, ::sw] = x
    return out


def _pad_or_crop(x, before, after):
    """Pad (positive) or crop (negative) the last two axes by per-side amounts."""
    pad = [(0, 0)] * (x.ndim - 2) + [(max(b, 0), max(a, 0)) for b, a in zip(before, after)]
    x = np.pad(x, pad)
    h, w = x.shape[-2:]
    cb = [max(-b, 0) for b in before]
    ca = [max(-a, 0) for a in after]
    return x[..., cb[0]:h - ca[0], cb[1]:w - ca[1]]


def _check_transposed(xb, w):
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 4 or w.shape[0] != xb.shape[1]:
        raise ValueError(f"w must be Paddle's (C_in={xb.shape[1]}, C_out, kh, kw), "
                         f"got shape {w.shape}")
    return w


def transposed_conv2d(x, w, b=None, stride=1, padding=0, output_padding=0):
    """Transposed convolution of ``x`` (C_in, H, W) or (N, C_in, H, W) with ``w`` in
    Paddle's (C_in, C_out, kh, kw) layout, as ``paddle.nn.functional.conv2d_transpose``.

    The recipe of the notes: zero-insert ``stride - 1`` between inputs, pad every side by
    ``k - 1 - padding`` (a negative amount crops) plus ``output_padding`` at the bottom and
    right, then a stride-1 ``conv2d`` with the kernel rotated by 180 degrees and its
    channel axes swapped to (C_out, C_in, kh, kw).

    Args:
        x: input array (C_in, H, W) or (N, C_in, H, W).
        w: kernel (C_in, C_out, kh, kw), Paddle's layout for transposed convs.
        b: optional bias (C_out,).
        stride: int or (sh, sw), the upsampling factor.
        padding: int or (ph, pw), cut from each side of the full output.
        output_padding: int or (oh, ow), extra rows/columns at the bottom and right.

    Returns:
        float32 array (C_out, H_out, W_out) (or with N first), sizes as
        ``transposed_conv_output_size``.
    """
    xb, undo = as_batch(x)
    w = _check_transposed(xb, w)
    (ph, pw), (oh, ow) = pair(padding), pair(output_padding)
    kh, kw = w.shape[2:]
    z = zero_insert(xb, stride)
    z = _pad_or_crop(z, (kh - 1 - ph, kw - 1 - pw), (kh - 1 - ph + oh, kw - 1 - pw + ow))
    w_rot = w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    return undo(conv2d(z, w_rot, b))


def transposed_conv2d_scatter(x, w, b=None, stride=1, padding=0, output_padding=0):
    """The same transposed conv by its definition: every input pixel adds ``value x kernel``
    to the output, at ``stride`` times its position; then ``padding`` is cut from each
    side. Vectorised over pixels: one accumulation per kernel tap.

    Args:
        x: input array (C_in, H, W) or (N, C_in, H, W).
        w: kernel (C_in, C_out, kh, kw), Paddle's layout.
        b: optional bias (C_out,).
        stride: int or (sh, sw).
        padding: int or (ph, pw), cut from each side.
        output_padding: int or (oh, ow), extra rows/columns at the bottom and right.

    Returns:
        float32 array, equal to ``transposed_conv2d`` with the same arguments.
    """
    xb, undo = as_batch(x)
    w = _check_transposed(xb, w)
    (sh, sw), (ph, pw), (oh, ow) = pair(stride), pair(padding), pair(output_padding)
    n, _, h, wd = xb.shape
    kh, kw = w.shape[2:]
    full = np.zeros((n, w.shape[1], (h - 1) * sh + kh + oh, (wd - 1) * sw + kw + ow), np.float32)
    for i in range(kh):
        for j in range(kw):
            # input pixel (r, c) times tap (i, j) lands on output (r*s + i, c*s + j)
            contrib = np.einsum("nchw,co->nohw", xb, w[:, :, i, j])
            full[:, :, i:i + (h - 1) * sh + 1:sh, j:j + (wd - 1) * sw + 1:sw] += contrib
    y = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    if b is not None:
        y = y + np.asarray(b, np.float32)[None, :, None, None]
    return undo(np.ascontiguousarray(y))


def conv_matrix(in_hw, w, stride=1, padding=0):
    """The matrix ``C`` of a single-channel conv with kernel ``w`` (kh, kw) on an ``in_hw``
    image: ``conv2d(x) == (C @ x.ravel()).reshape(out_hw)``. ``C`` is (H_out*W_out, H*W)
    and mostly zeros; ``C.T`` maps back from the output size to the input size, and that
    is the transposed conv with the same kernel.

    Args:
        in_hw: input size, int or (H, W).
        w: single-channel kernel (kh, kw).
        stride: int or (sh, sw).
        padding: int or (ph, pw).

    Returns:
        float32 array (H_out * W_out, H * W).
    """
    w = np.asarray(w, dtype=np.float32)
    (h, wd), (sh, sw), (ph, pw) = pair(in_hw), pair(stride), pair(padding)
    kh, kw = w.shape
    ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(wd, kw, sw, pw)
    # every (output pixel, kernel tap) pair and the input pixel it reads
    r, c, i, j = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(kh), np.arange(kw),
                             indexing="ij")
    rows, cols = r * sh - ph + i, c * sw - pw + j
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < wd)
    mat = np.zeros((ho * wo, h * wd), np.float32)
    np.add.at(mat, ((r * wo + c)[inside], (rows * wd + cols)[inside]), w[i, j][inside])
    return mat
