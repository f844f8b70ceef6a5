"""Max pooling that remembers where each maximum came from, and un-pooling (反池化),
its reverse: put each value back at its remembered position, zeros elsewhere.

Indices are flat positions inside each (H, W) input plane, ``row * W + col`` in
unpadded coordinates, as ``paddle.nn.functional.max_pool2d(return_mask=True)`` returns them.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._util import as_batch, pair


def _windows(x, kernel_size, stride, padding, fill):
    """All pooling windows of (N, C, H, W): (N, C, H_out, W_out, kh, kw)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def max_pool2d_with_indices(x, kernel_size, stride=None, padding=0):
    """Max pooling of (C, H, W) or (N, C, H, W); returns ``(values, indices)`` with
    int64 flat per-plane indices of the maxima (the first one on ties).

    Args:
        x: input array (C, H, W) or (N, C, H, W).
        kernel_size: window size, int or (kh, kw).
        stride: int or (sh, sw); default ``kernel_size`` (non-overlapping windows, Paddle's).
        padding: int or (ph, pw); padded cells never win (they hold -inf).

    Returns:
        (values, indices): float32 pooled map and int64 ``row * W + col`` of each maximum in
        the unpadded input, both (C, H_out, W_out) or (N, C, H_out, W_out).
    """
    xb, undo = as_batch(x)
    k = pair(kernel_size, "kernel_size")
    s = pair(stride if stride is not None else kernel_size, "stride")
    p = pair(padding, "padding")
    win = _windows(xb, k, s, p, -np.inf)
    n, c, ho, wo = win.shape[:4]
    flat = win.reshape(n, c, ho, wo, k[0] * k[1])
    arg = flat.argmax(-1)
    values = np.take_along_axis(flat, arg[..., None], -1)[..., 0]
    # window position -> row and column of the unpadded input
    rows = np.arange(ho)[:, None] * s[0] - p[0] + arg // k[1]
    cols = np.arange(wo)[None, :] * s[1] - p[1] + arg % k[1]
    indices = rows * xb.shape[3] + cols
    return undo(values.astype(np.float32)), undo(indices.astype(np.int64))


def unpool_output_size(in_hw, kernel_size, stride=None, padding=0):
    """Default output (H, W) of un-pooling: the input size the pooling would shrink."""
    k = pair(kernel_size)
    s = pair(stride if stride is not None else kernel_size)
    p = pair(padding)
    return tuple((n - 1) * s[i] - 2 * p[i] + k[i] for i, n in enumerate(in_hw))


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Un-pooling: scatter each value of ``x`` to its flat position ``indices`` in an
    output plane of zeros, as ``paddle.nn.functional.max_unpool2d``.

    ``output_size`` is (H, W) (or a full shape whose last two entries are used); by
    default the size the pooling started from.

    Args:
        x: pooled values (C, h, w) or (N, C, h, w).
        indices: int flat positions ``row * W + col``, same shape as ``x``.
        kernel_size: the pooling's window, int or (kh, kw) (only sets the default size).
        stride: the pooling's stride (default ``kernel_size``).
        padding: the pooling's padding.
        output_size: (H, W) or a shape ending in it; default ``unpool_output_size``.

    Returns:
        float32 array (C, H, W) or (N, C, H, W), zero except at ``indices``.
    """
    xb, undo = as_batch(x)
    ib = np.asarray(indices, dtype=np.int64).reshape(xb.shape)
    if output_size is None:
        out_hw = unpool_output_size(xb.shape[2:], kernel_size, stride, padding)
    else:
        out_hw = tuple(int(v) for v in tuple(output_size)[-2:])
    n, c = xb.shape[:2]
    size = out_hw[0] * out_hw[1]
    if ib.size and (ib.min() < 0 or ib.max() >= size):
        raise ValueError(f"indices must lie in [0, {size}) for output size {out_hw}")
    out = np.zeros((n, c, size), dtype=np.float32)
    np.put_along_axis(out, ib.reshape(n, c, -1), xb.reshape(n, c, -1), axis=-1)
    return undo(out.reshape(n, c, *out_hw))


def random_pool_indices(shape, kernel_size, stride=None, padding=0, in_hw=None, seed=0):
    """Random un-pooling indices for a pooled map of ``shape`` ((C, h, w) or (N, C, h, w)):
    one random position inside each pooling window, as if some pooling had chosen it.

    The notes: un-pooling forward needs indices, which can be generated at random.
    ``in_hw`` is the (H, W) the indices address (default: ``unpool_output_size``).

    Args:
        shape: shape of the pooled map, (C, h, w) or (N, C, h, w).
        kernel_size: window size, int or (kh, kw).
        stride: int or (sh, sw); default ``kernel_size``.
        padding: int or (ph, pw).
        in_hw: (H, W) of the un-pooled map.
        seed: seed of the NumPy generator (same seed, same indices).

    Returns:
        int64 array of ``shape``: flat positions ``row * W + col`` inside ``in_hw``.
    """
    k = pair(kernel_size)
    s = pair(stride if stride is not None else kernel_size)
    p = pair(padding)
    h, w = shape[-2:]
    in_hw = in_hw or unpool_output_size((h, w), k, s, p)
    rng = np.random.default_rng(seed)
    rows = np.arange(h)[:, None] * s[0] - p[0] + rng.integers(0, k[0], size=shape)
    cols = np.arange(w)[None, :] * s[1] - p[1] + rng.integers(0, k[1], size=shape)
    # a window that hangs over the padding: keep the position inside the image
    rows = np.clip(rows, 0, in_hw[0] - 1)
    cols = np.clip(cols, 0, in_hw[1] - 1)
    return (rows * in_hw[1] + cols).astype(np.int64)


__all__ = ["max_pool2d_with_indices", "max_unpool2d", "random_pool_indices",
           "unpool_output_size"]
