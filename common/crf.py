"""Fully connected CRF (全连接条件随机场) post-processing of DeepLab V1/V2.

Energy over labels x:  E(x) = sum_i -log P(x_i)  +  sum_{i<j} mu(x_i, x_j) k(f_i, f_j)
with the Potts compatibility mu = [x_i != x_j] and two Gaussian kernels:

    appearance (bilateral)  w_app * exp(-|p_i-p_j|^2 / 2 theta_alpha^2 - |I_i-I_j|^2 / 2 theta_beta^2)
    smoothness (Gaussian)   w_smooth * exp(-|p_i-p_j|^2 / 2 theta_gamma^2)

Mean-field inference repeats   Q_i(l) ∝ exp(-U_i(l) + sum_m w_m sum_j k~_m(i, j) Q_j(l)),
i.e. each pixel is pulled towards the labels of pixels that are near and alike. Following
Krähenbühl & Koltun's implementation (which ``pydensecrf`` wraps), each kernel is
normalised symmetrically, k~(i, j) = k(i, j) / sqrt(d_i d_j) with d_i = sum_j k(i, j).

- ``dense_crf_exact``: all N x N messages in NumPy (the definition; small images only).
- ``dense_crf``: full-size images. Uses ``pydensecrf`` (permutohedral lattice, O(N)) when
  it imports, else ``backend='filter'``: a Gaussian filter for the smoothness kernel and a
  bilateral grid for the appearance kernel, both our own.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

# Chosen by hand for the 96x96 synthetic scenes (on which scenes was not recorded). The papers
# fix w_smooth = theta_gamma = 3 and cross-validate the rest per dataset on held-out images:
# V1 Sec. 5 searches w_app in [5, 10], theta_alpha in [50, 100], theta_beta in [3, 10];
# V2 Sec. 4.1 w_app in [3, 6], theta_alpha in [30, 100], theta_beta in [3, 6].
DEFAULTS = dict(w_app=10.0, theta_alpha=40.0, theta_beta=13.0, w_smooth=3.0, theta_gamma=3.0)


def _check(probs, image):
    probs = np.asarray(probs, np.float32)
    image = np.asarray(image)
    if probs.ndim != 3:
        raise ValueError(f"probs must be (K, H, W) class probabilities, got shape {probs.shape}")
    if image.shape != probs.shape[1:] + (3,) or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3) matching probs {probs.shape[1:]}, "
                         f"got {image.dtype} {image.shape}")
    return probs, image


def _unary(probs, eps=1e-8):
    """-log P: the unary energy of each label."""
    return -np.log(np.clip(probs, eps, 1.0))


def _softmax(logits, axis=0):
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _features(image, theta_alpha, theta_beta, theta_gamma):
    """Per-pixel features scaled by their kernel widths: bilateral (x, y, r, g, b), spatial (x, y)."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    pos = np.stack([xx.ravel(), yy.ravel()], 1)
    rgb = image.reshape(-1, 3).astype(np.float32)
    return np.concatenate([pos / theta_alpha, rgb / theta_beta], 1), pos / theta_gamma


def _gauss_matrix(f):
    """exp(-|f_i - f_j|^2 / 2) for all pairs (N, N), vectorised."""
    sq = (f * f).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * f @ f.T, 0)
    return np.exp(-0.5 * d2)


def _normalise(k):
    n = 1.0 / np.sqrt(k.sum(1))
    return k * n[:, None] * n[None, :]


def dense_crf_exact(probs, image, iters=5, w_app=DEFAULTS["w_app"], theta_alpha=DEFAULTS["theta_alpha"],
                    theta_beta=DEFAULTS["theta_beta"], w_smooth=DEFAULTS["w_smooth"],
                    theta_gamma=DEFAULTS["theta_gamma"]):
    """Mean-field with all-pairs messages. probs (K, H, W), image uint8 (H, W, 3) ->
    refined probabilities (K, H, W). Memory is N^2 floats: keep H*W below ~5000.

    Args:
        probs: class probabilities (K, H, W), the unary term's source.
        image: uint8 RGB (H, W, 3), the appearance kernel's colours.
        iters: mean-field iterations.
        w_app: weight of the appearance (bilateral) kernel.
        theta_alpha: its spatial scale in pixels.
        theta_beta: its colour scale in intensity levels.
        w_smooth: weight of the smoothness (Gaussian) kernel.
        theta_gamma: its spatial scale in pixels.

    Returns:
        refined probabilities (K, H, W).
    """
    probs, image = _check(probs, image)
    k, h, w = probs.shape
    if h * w > 10_000:
        raise ValueError(f"dense_crf_exact needs (H*W)^2 memory; {h}x{w} is too big, use dense_crf")
    f_app, f_smooth = _features(image, theta_alpha, theta_beta, theta_gamma)
    kernel = w_app * _normalise(_gauss_matrix(f_app)) + w_smooth * _normalise(_gauss_matrix(f_smooth))
    unary = _unary(probs).reshape(k, -1)
    q = _softmax(-unary)
    for _ in range(iters):
        q = _softmax(-unary + q @ kernel.T)      # message to i: sum_j kernel(i, j) Q_j
    return q.reshape(k, h, w)


def _has_pydensecrf():
    try:
        import pydensecrf.densecrf  # noqa: F401
        return True
    except ImportError:
        return False


def dense_crf(probs, image, iters=5, backend="auto", **params):
    """Mean-field on a full-size image. ``backend``: 'pydensecrf' (permutohedral lattice),
    'filter' (our Gaussian filter + bilateral grid) or 'auto' (the first one available).

    Args:
        probs: class probabilities (K, H, W).
        image: uint8 RGB (H, W, 3).
        iters: mean-field iterations.
        backend: ``'auto'``, ``'pydensecrf'`` or ``'filter'``.
        **params: kernel parameters of ``dense_crf_exact`` (defaults ``DEFAULTS``).

    Returns:
        float32 refined probabilities (K, H, W).
    """
    probs, image = _check(probs, image)
    p = {**DEFAULTS, **params}
    if backend == "auto":
        backend = "pydensecrf" if _has_pydensecrf() else "filter"
    if backend == "pydensecrf":
        return _crf_pydensecrf(probs, image, iters, p)
    if backend == "filter":
        return _crf_filter(probs, image, iters, p)
    raise ValueError(f"backend must be 'auto', 'pydensecrf' or 'filter', got {backend!r}")


def _crf_pydensecrf(probs, image, iters, p):
    import pydensecrf.densecrf as dcrf

    k, h, w = probs.shape
    d = dcrf.DenseCRF2D(w, h, k)
    d.setUnaryEnergy(np.ascontiguousarray(_unary(probs).reshape(k, -1)))
    d.addPairwiseGaussian(sxy=p["theta_gamma"], compat=p["w_smooth"])
    d.addPairwiseBilateral(sxy=p["theta_alpha"], srgb=p["theta_beta"],
                           rgbim=np.ascontiguousarray(image), compat=p["w_app"])
    return np.array(d.inference(iters), np.float32).reshape(k, h, w)


def _bilateral_grid(values, feats, cell=1.0):
    """Approximate sum_j exp(-|f_i - f_j|^2 / 2) v_j for every i (up to a constant factor,
    which the kernel normalisation removes): splat the values onto a grid over the scaled
    features with spacing ``cell`` (multilinear weights to the 2^D corners), blur the grid
    with a Gaussian, read it back multilinearly. The two tent interpolations add variance
    cell^2/6 each, so the blur is narrowed to keep the total at 1. values (C, N), feats (N, D)."""
    g = feats / cell
    g = g - g.min(0)
    base = np.floor(g).astype(np.int64)
    frac = g - base
    n, d = g.shape
    shape = tuple(base.max(0) + 2)
    corners = (np.arange(2 ** d)[:, None] >> np.arange(d)) & 1             # (2^D, D) of 0/1
    flat = np.ravel_multi_index((base[None] + corners[:, None]).transpose(2, 0, 1), shape)  # (2^D, N)
    wts = np.prod(np.where(corners[:, None], frac[None], 1 - frac[None]), axis=2)            # (2^D, N)
    sigma = np.sqrt(max(1 - cell ** 2 / 3, 0.05)) / cell
    out = np.empty_like(values)
    for c, v in enumerate(values):           # a few channels; each step is vectorised
        grid = np.bincount(flat.ravel(), weights=(wts * v).ravel(), minlength=int(np.prod(shape)))
        grid = ndimage.gaussian_filter(grid.reshape(shape), sigma=sigma, mode="constant", truncate=3.0)
        out[c] = ndimage.map_coordinates(grid, g.T, order=1, mode="constant")
    return out


def _crf_filter(probs, image, iters, p):
    k, h, w = probs.shape
    f_app, _ = _features(image, p["theta_alpha"], p["theta_beta"], p["theta_gamma"])

    def smooth(v):                            # spatial Gaussian: exact separable filtering
        return ndimage.gaussian_filter(v.reshape(-1, h, w), sigma=(0, p["theta_gamma"], p["theta_gamma"]),
                                       mode="constant", truncate=4.0).reshape(v.shape)

    def app(v):
        return _bilateral_grid(v, f_app)

    norms = []
    for filt in (app, smooth):
        n = 1.0 / np.sqrt(np.maximum(filt(np.ones((1, h * w), np.float64))[0], 1e-20))
        norms.append((filt, n))
    unary = _unary(probs).reshape(k, -1).astype(np.float64)
    q = _softmax(-unary)
    weights = (p["w_app"], p["w_smooth"])
    for _ in range(iters):
        msg = sum(wt * n * filt(q * n) for wt, (filt, n) in zip(weights, norms))
        q = _softmax(-unary + msg)
    return q.reshape(k, h, w).astype(np.float32)


class DenseCRF:
    """The fully connected CRF as a post-processing step a model holds
    (``model.postprocess`` of DeepLab V1/V2; None for V3/V3+, which dropped it).

    ``crf(probs, images)`` takes softmax probabilities (K, H, W) with a uint8 image
    (H, W, 3), or a batch (N, K, H, W) with (N, H, W, 3), and returns refined
    probabilities of the same shape.

    Args:
        iters: mean-field iterations.
        backend: as ``dense_crf``.
        params: kernel parameters (defaults ``DEFAULTS``).
    """

    def __init__(self, iters=5, backend="auto", **params):
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"DenseCRF: unknown parameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.iters, self.backend, self.params = iters, backend, {**DEFAULTS, **params}

    def __call__(self, probs, images):
        probs = np.asarray(probs.numpy() if hasattr(probs, "numpy") else probs, np.float32)
        images = np.asarray(images)
        if probs.ndim == 3:
            return dense_crf(probs, images, self.iters, self.backend, **self.params)
        if probs.ndim != 4 or images.ndim != 4 or len(probs) != len(images):
            raise ValueError(f"DenseCRF: probs (N, K, H, W) and images (N, H, W, 3) of the same N, "
                             f"got {probs.shape} and {images.shape}")
        return np.stack([dense_crf(p, im, self.iters, self.backend, **self.params)
                         for p, im in zip(probs, images)])

    def __repr__(self):
        return f"DenseCRF(iters={self.iters}, backend={self.backend!r})"
