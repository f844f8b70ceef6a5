"""One training step and one inference step of any model of the course, for the benchmarks.

Instance and panoptic models train on targets, not label maps: ``training_loss`` gives each a
loss on stand-in targets of the benchmark's batch and size, built once per (batch, size),
outside the timed steps, so a benchmark times the model.
"""
from __future__ import annotations

import time

import numpy as np
import paddle

from common.data.instances import SceneInstances, targets_to_tensors
from common.engine import optimizer_step
from common.labels import LABEL_DIVISOR
from common.losses import SegLoss
from common.models.mask_rcnn import MaskRCNN  # UPSNet is a MaskRCNN
from common.models.panoptic_deeplab import PanopticDeepLab, PanopticDeepLabLoss
from common.models.solo import SOLO


def _centre_square(n, h, w):
    """(n, h, w) bool: the middle third of every image (the stand-in object)."""
    m = np.zeros((n, h, w), bool)
    m[:, h // 3:2 * h // 3, w // 3:2 * w // 3] = True
    return m


def detector_loss(model, n, size):
    """Mask R-CNN / UPSNet: the sum of the training losses on the targets (boxes, labels,
    masks, semantic, panoptic) of ``n`` synthetic instance scenes of side ``size``.

    Args:
        model: a MaskRCNN or UPSNet (train mode returns a dict of losses).
        n: batch size.
        size: (h, w) of the images.

    Returns:
        ``loss_of(images)`` -> scalar loss tensor.
    """
    data = SceneInstances(n, size, seed=0)
    targets = targets_to_tensors([data[i][1] for i in range(n)])
    return lambda images: paddle.add_n(list(model(images, targets).values()))


def solo_loss(model, n, size):
    """SOLO: its training loss with one stand-in instance per image (class 0, the centre
    square). Arguments and return as ``detector_loss``."""
    masks = _centre_square(1, *size)
    targets = [dict(masks=masks, labels=np.array([0]))] * n
    return lambda images: model(images, targets)["loss"]


def panoptic_deeplab_loss(model, n, size):
    """Panoptic-DeepLab: ``PanopticDeepLabLoss`` on a stand-in panoptic map (class 1 with
    instance 1 of the last thing class on the centre square). Arguments and return as
    ``detector_loss``."""
    thing = model.thing_ids[-1] if model.thing_ids else model.num_classes - 1
    pan = np.where(_centre_square(n, *size), thing * LABEL_DIVISOR + 1, 1 * LABEL_DIVISOR)
    loss_fn = PanopticDeepLabLoss((thing,))
    return lambda images: loss_fn(model(images), pan)


def _stand_in(model):
    """The stand-in training loss for ``model``'s class, or None (a segmentation model)."""
    for cls, stand_in in ((MaskRCNN, detector_loss), (SOLO, solo_loss),
                          (PanopticDeepLab, panoptic_deeplab_loss)):
        if isinstance(model, cls):
            return stand_in
    return None


def training_loss(model, labels):
    """The loss a benchmark step trains, as a function of the images: the segmentation loss
    against ``labels`` (N, H, W), or, for the instance and panoptic models, their stand-in
    loss above on targets of the images' batch and size (built on the first call for
    each shape, then reused).

    Args:
        model: any model of ``BENCH_MODELS``.
        labels: class labels (N, H, W) for segmentation models.

    Returns:
        ``loss_of(images)`` -> scalar loss tensor.
    """
    stand_in = _stand_in(model)
    if stand_in is None:
        loss_fn = SegLoss()
        return lambda images: loss_fn(model(images), labels)
    cache = {}

    def loss_of(images):
        n, _, h, w = images.shape
        if (n, h, w) not in cache:
            cache[(n, h, w)] = stand_in(model, n, (h, w))
        return cache[(n, h, w)](images)
    return loss_of


def step_fns(model, x, y, amp=False):
    """(train step, inference step) closures on the batch ``x`` (labels ``y``): momentum SGD
    on ``training_loss`` (the segmentation loss, or the stand-in of an instance/panoptic
    model); with ``amp``, mixed precision (``paddle.amp``: float16 forward under
    ``auto_cast``, loss scaling by a ``GradScaler``). The train step returns the loss."""
    loss_of = training_loss(model, y)
    opt = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
    scaler = paddle.amp.GradScaler() if amp else None

    def train():
        model.train()
        return optimizer_step(lambda: loss_of(x), opt, scaler)

    def infer():
        model.eval()
        with paddle.no_grad(), paddle.amp.auto_cast(enable=amp):
            return model(x)
    return train, infer


def _sync():
    if paddle.get_device().startswith("gpu"):      # GPU kernels run asynchronously
        paddle.device.synchronize()


def rate(fn, n_items, steps, warmup=1):
    """Items per second of ``fn`` (each call handles ``n_items``) over ``steps`` calls, after
    ``warmup`` untimed ones (kernel selection, allocations), and the last call's result.

    Returns:
        (items per second, result of the last call).
    """
    for _ in range(warmup):
        fn()
    _sync()
    start = time.perf_counter()
    for _ in range(steps):
        out = fn()
    _sync()
    return n_items * steps / (time.perf_counter() - start), out
