"""Inference and evaluation of semantic segmentation models, as free functions.

One path for every caller (``Trainer.predict/evaluate``, notebooks, experiments):

- ``predict_logits(model, images)``: one plain forward pass, raw logits (N, K, H, W).
- ``sliding_window(model, images, window, stride)``: logits of an image larger than the
  training crops, from overlapping windows; the last window of a row or column is aligned
  to the border, so every pixel is covered; overlapping logits are averaged.
- ``predict_probs(model, images, scales, flip, window)``: softmax probabilities averaged
  over scales and horizontal flips (test-time augmentation).
- ``predict(model, images, ...)``: label maps (N, H, W), the argmax of ``predict_probs``.
- ``segment_image(model, image, window)``: the label map of one RGB photo of any size.
- ``evaluate(model, data, num_classes)``: ``common.metrics.segmentation_scores`` of the
  dataset confusion matrix.
- ``predict_instances(model, data)``: the per-image outputs of an instance or panoptic
  model (Mask R-CNN, SOLO, UPSNet) on a dataset of ``(image, target)`` items, with the
  targets, for ``metrics.mask_ap`` and ``metrics.panoptic_quality``.

Images are normalised float32 (N, 3, H, W) arrays or tensors. A model may return its
logits alone, a list/tuple whose first element is the main output (auxiliary heads after
it), or a dict with key ``"out"`` (torchvision's convention). The functions run the model
in eval mode without gradients and restore its train/eval mode afterwards.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import paddle
import paddle.nn.functional as F

from .data.transforms import to_tensor_arrays
from .metrics import SegMetric

__all__ = ["predict_logits", "sliding_window", "predict_probs", "predict", "segment_image", "evaluate",
           "predict_instances"]


def _as_tensor(images):
    if isinstance(images, paddle.Tensor):
        return images
    return paddle.to_tensor(np.asarray(images, np.float32))


def _main_output(out):
    """The main logits of a model output (see module doc)."""
    if isinstance(out, dict):
        if "out" not in out:
            raise ValueError(f"model returned a dict without key 'out' (keys {sorted(out)}); "
                             "these functions expect semantic logits")
        return out["out"]
    if isinstance(out, (list, tuple)):
        return out[0]
    return out


@contextmanager
def _eval_mode(model):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _pair(v, name):
    h, w = (v, v) if np.isscalar(v) else tuple(v)
    if int(h) != h or int(w) != w or h < 1 or w < 1:
        raise ValueError(f"{name} must be a positive int or (height, width) of positive ints, got {v!r}")
    return int(h), int(w)


def _window_starts(length, size, stride):
    """Window offsets along one axis: every ``stride`` pixels, plus a last window aligned
    to the border (PaddleSeg's slide inference does the same). A window larger than the
    image is one window, cropped to the image."""
    if size >= length:
        return [0]
    return list(range(0, length - size, stride)) + [length - size]


@paddle.no_grad()
def predict_logits(model, images):
    """One forward pass in eval mode.

    Args:
        model: a ``paddle.nn.Layer`` mapping (N, 3, H, W) to logits (see module doc).
        images: normalised float32 (N, 3, H, W) array or tensor.

    Returns:
        float32 tensor (N, K, H, W): the main output's logits.
    """
    with _eval_mode(model):
        return _main_output(model(_as_tensor(images))).astype("float32")


@paddle.no_grad()
def sliding_window(model, images, window, stride, num_classes=None):
    """Logits from overlapping windows, averaged where windows overlap.

    Windows start every ``stride`` pixels and the last one of each row and column is
    aligned to the image border, so every pixel is covered at least once. An image
    smaller than the window is one (smaller) window.

    Args:
        model: a ``paddle.nn.Layer`` mapping (N, 3, h, w) to logits (N, K, h, w).
        images: normalised float32 (N, 3, H, W) array or tensor.
        window: window size, int or (height, width).
        stride: step between windows, int or (height, width); at most the window size
            (a larger step would skip pixels between windows).
        num_classes: if given, the model's output channels are checked against it.

    Returns:
        float32 tensor (N, K, H, W).

    Raises:
        ValueError: a stride larger than the window, or non-positive sizes.
    """
    wh, ww = _pair(window, "window")
    sh, sw = _pair(stride, "stride")
    if sh > wh or sw > ww:
        raise ValueError(f"stride {stride!r} is larger than window {window!r}: the pixels "
                         "between two windows would get no prediction; use stride <= window")
    x = _as_tensor(images)
    n, _, h, w = x.shape
    ys, xs = _window_starts(h, wh, sh), _window_starts(w, ww, sw)
    count = np.zeros((h, w), np.float32)           # windows covering each pixel
    acc = None
    with _eval_mode(model):
        for y in ys:
            for x0 in xs:
                y1, x1 = min(y + wh, h), min(x0 + ww, w)
                out = _main_output(model(x[:, :, y:y1, x0:x1])).astype("float32")
                if acc is None:
                    k = out.shape[1]
                    if num_classes is not None and k != num_classes:
                        raise ValueError(f"model returned {k} channels, num_classes is {num_classes}")
                    acc = paddle.zeros([n, k, h, w], "float32")
                acc[:, :, y:y1, x0:x1] = acc[:, :, y:y1, x0:x1] + out
                count[y:y1, x0:x1] += 1
    assert count.min() >= 1, "sliding window left a pixel uncovered"   # by construction
    return acc / paddle.to_tensor(count)


@paddle.no_grad()
def predict_probs(model, images, scales=(1.0,), flip=False, window=None):
    """Softmax probabilities averaged over scales and horizontal flips.

    Each scale resizes the images (bilinear), runs the model (plainly or by sliding
    window), takes the softmax, undoes the flip and resizes the probabilities back to the
    input size; the result is their mean. ``scales=(1.0,)``, ``flip=False`` is one plain
    forward pass.

    Args:
        model: a ``paddle.nn.Layer`` mapping (N, 3, H, W) to logits.
        images: normalised float32 (N, 3, H, W) array or tensor.
        scales: image scale factors (> 0), e.g. (0.75, 1.0, 1.25).
        flip: also run each scale mirrored left-right.
        window: ``(size, stride)`` to run ``sliding_window`` at each scale; None = whole image.

    Returns:
        float32 tensor (N, K, H, W) of probabilities (they sum to 1 over K).
    """
    if not len(scales) or any(not s > 0 for s in scales):
        raise ValueError(f"scales must be positive numbers, got {scales!r}")
    x = _as_tensor(images)
    h, w = x.shape[-2:]
    total = 0
    with _eval_mode(model):
        for s in scales:
            xs = x if s == 1 else F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))),
                                                mode="bilinear", align_corners=False)
            for flipped in ((False, True) if flip else (False,)):
                xi = xs.flip([3]) if flipped else xs
                out = sliding_window(model, xi, *window) if window else predict_logits(model, xi)
                p = F.softmax(out, axis=1)
                if flipped:
                    p = p.flip([3])
                total = total + F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
    return total / (len(scales) * (2 if flip else 1))


def predict(model, images, **kwargs):
    """Label maps: the argmax over classes of ``predict_probs(model, images, **kwargs)``.

    Args:
        model: a semantic segmentation model (see module doc).
        images: normalised float32 (N, 3, H, W) array or tensor.
        **kwargs: ``scales``, ``flip``, ``window`` of ``predict_probs``.

    Returns:
        int64 numpy array (N, H, W).
    """
    return predict_probs(model, images, **kwargs).argmax(1).numpy()


def segment_image(model, image, window=512, stride=None):
    """Label map (H, W) int64 of one RGB uint8 image (H, W, 3), any size.

    Args:
        model: semantic model in eval mode.
        image: RGB uint8 (H, W, 3), e.g. ``common.data.read_image(path)``.
        window: an image with a side longer than this is predicted by sliding windows of
            ``window`` pixels (0 or None: always the whole image).
        stride: window step (default ``2 * window // 3``).

    Returns:
        int64 array (H, W).
    """
    x = to_tensor_arrays(image)[None]
    kwargs = {}
    if window and max(image.shape[:2]) > window:
        kwargs["window"] = (window, stride or max(1, 2 * window // 3))
    return np.asarray(predict(model, x, **kwargs)[0])


def evaluate(model, data, num_classes, ignore_index=255, batch_size=8, progress=False, **predict_kwargs):
    """Dataset scores: predict every item of ``data`` and score the summed confusion matrix.

    Args:
        model: a semantic segmentation model (see module doc).
        data: a dataset whose items are ``(image (3, H, W), label (H, W))`` arrays.
        num_classes: K.
        ignore_index: label value that is not scored.
        batch_size: images per forward pass (items of one batch must share their size).
        progress: show a ``tqdm`` bar of the images scored.
        **predict_kwargs: ``scales``, ``flip``, ``window`` of ``predict_probs``.

    Returns:
        dict of ``common.metrics.segmentation_scores`` (iou, miou, acc, macc, pixel_acc,
        kappa, dice), computed once from the dataset confusion matrix.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    from tqdm.auto import tqdm

    metric = SegMetric(num_classes, ignore_index)
    with tqdm(total=len(data), desc="evaluate", disable=not progress, leave=False) as bar:
        for s in range(0, len(data), batch_size):
            items = [data[i] for i in range(s, min(s + batch_size, len(data)))]
            pred = predict(model, np.stack([x for x, _ in items]), **predict_kwargs)
            metric.update(pred, np.stack([y for _, y in items]))
            bar.update(len(items))
    return metric.compute()


@paddle.no_grad()
def predict_instances(model, data, batch_size=8, progress=False):
    """Eval-mode outputs of an instance/panoptic model on every item of ``data``.

    Args:
        model: a model whose eval forward ``model(images)`` returns one dict per image
            (Mask R-CNN, SOLO, UPSNet: ``boxes``, ``scores``, ``labels``, ``masks``, ...).
        data: a dataset of ``(image (3, H, W), target dict)`` items
            (``common.data.instances.SceneInstances``).
        batch_size: images per forward pass.
        progress: show a ``tqdm`` bar of the images predicted.

    Returns:
        ``(predictions, targets)``: two lists with one dict per image, in dataset order.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    from tqdm.auto import tqdm

    preds, targets = [], []
    with _eval_mode(model), tqdm(total=len(data), desc="predict", disable=not progress, leave=False) as bar:
        for s in range(0, len(data), batch_size):
            items = [data[i] for i in range(s, min(s + batch_size, len(data)))]
            preds += model(_as_tensor(np.stack([x for x, _ in items])))
            targets += [t for _, t in items]
            bar.update(len(items))
    return preds, targets
