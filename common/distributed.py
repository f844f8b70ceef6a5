"""Data parallel with BatchNorm: one set of batch statistics over all processes.

With ``paddle.DataParallel`` each process sees ``batch_size / world`` images. A plain
BatchNorm would normalise each process's share with that share's own mean and variance,
so two processes would not train the model one process trains on the same global batch
(and a small share gives noisy statistics). ``sync_batchnorm`` replaces every BatchNorm
with a synchronised one when more than one process runs:

- where Paddle has a ``sync_batch_norm`` kernel (GPU): ``paddle.nn.SyncBatchNorm``;
- on the CPU (gloo), where Paddle 3.3 registers no such kernel (``SyncBatchNorm`` fails
  with "The kernel `sync_batch_norm` is not registered"): ``AllReduceBatchNorm`` below,
  the same statistics from two differentiable all-reduces.
"""
from __future__ import annotations

import paddle
import paddle.distributed as dist
import paddle.nn as nn
import paddle.nn.functional as F


class _AllReduceSum(paddle.autograd.PyLayer):
    """Sum of a tensor over all processes; its gradient is again the sum over processes
    (each process's input feeds every process's output)."""

    @staticmethod
    def forward(ctx, x):
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        g = grad.clone()
        dist.all_reduce(g)
        return g


def _sum_all(x, world):
    return _AllReduceSum.apply(x) if world > 1 else x


class AllReduceBatchNorm(nn.Layer):
    """A BatchNorm2D whose training statistics are those of the whole global batch.

    It shares the parameters and running statistics of the ``nn.BatchNorm2D`` it replaces
    (same state_dict names, so checkpoints load into either). In training the per-channel
    mean is all-reduced first, then the mean squared deviation from it (two passes, as
    Paddle's kernel computes the variance); running statistics follow Paddle's convention
    ``running = momentum * running + (1 - momentum) * batch`` with the biased variance.
    In eval mode it is the plain BatchNorm with the running statistics.

    Args:
        bn: the ``nn.BatchNorm2D`` (NCHW) to replace.
        world: number of processes to reduce over; None = ``paddle.distributed.get_world_size()``.
    """

    def __init__(self, bn, world=None):
        super().__init__()
        if bn._data_format not in ("NCHW",):
            raise ValueError(f"AllReduceBatchNorm supports NCHW BatchNorm2D, got data_format {bn._data_format}")
        self.weight, self.bias = bn.weight, bn.bias
        self._mean, self._variance = bn._mean, bn._variance     # non-trainable parameters in Paddle
        self._momentum, self._epsilon = bn._momentum, bn._epsilon
        self._use_global_stats = getattr(bn, "_use_global_stats", None)
        self.world = dist.get_world_size() if world is None else world

    def forward(self, x):
        if not self.training or self._use_global_stats:
            return F.batch_norm(x, self._mean, self._variance, self.weight, self.bias, training=False,
                                momentum=self._momentum, epsilon=self._epsilon)
        n, c, h, w = x.shape
        count = _sum_all(paddle.full([1], n * h * w, x.dtype), self.world)
        mean = _sum_all(x.sum(axis=[0, 2, 3]), self.world) / count
        centred = x - mean.reshape([1, c, 1, 1])
        var = _sum_all((centred * centred).sum(axis=[0, 2, 3]), self.world) / count
        with paddle.no_grad():
            m = self._momentum
            paddle.assign(m * self._mean + (1 - m) * mean.detach(), self._mean)
            paddle.assign(m * self._variance + (1 - m) * var.detach(), self._variance)
        y = centred * paddle.rsqrt(var + self._epsilon).reshape([1, c, 1, 1])
        return y * self.weight.reshape([1, c, 1, 1]) + self.bias.reshape([1, c, 1, 1])


def _has_sync_kernel(device):
    """True if Paddle registers a ``sync_batch_norm`` kernel for ``device`` ('cpu', 'gpu:0')."""
    backend = device.split(":")[0].upper()
    try:
        kernels = paddle.base.core._get_registered_phi_kernels("function").get("sync_batch_norm", [])
    except Exception:                   # private API gone: GPU builds have the kernel, CPU has not
        return backend != "CPU"
    return any(k.startswith(f"({backend},") for k in kernels)


def _replace_batchnorms(layer, make):
    """Replace every nn.BatchNorm2D below ``layer`` (in place) by ``make(bn)``; returns the count."""
    count = 0
    for name, sub in list(layer.named_children()):
        if isinstance(sub, nn.BatchNorm2D):
            layer._sub_layers[name] = make(sub)
            count += 1
        else:
            count += _replace_batchnorms(sub, make)
    return count


def sync_batchnorm(model, world=None, device=None):
    """Make ``model``'s BatchNorm2D layers synchronised when more than one process trains.

    Args:
        model: a ``paddle.nn.Layer`` (changed in place; the parameters stay the same
            objects, so an optimiser built on them before or after still holds them).
        world: number of processes; None = ``paddle.distributed.get_world_size()``.
        device: None = ``paddle.device.get_device()``.

    Returns:
        (model, kind): kind is None (one process, or no BatchNorm2D: nothing changed),
        ``"SyncBatchNorm"`` (Paddle's kernel) or ``"AllReduceBatchNorm"`` (CPU).
    """
    world = dist.get_world_size() if world is None else world
    device = paddle.device.get_device() if device is None else device
    if isinstance(model, nn.BatchNorm2D):
        raise ValueError("sync_batchnorm converts the BatchNorm layers inside a model; got a bare BatchNorm2D")
    if world <= 1 or not any(isinstance(s, nn.BatchNorm2D) for s in model.sublayers()):
        return model, None
    if _has_sync_kernel(device):
        return nn.SyncBatchNorm.convert_sync_batchnorm(model), "SyncBatchNorm"
    _replace_batchnorms(model, lambda bn: AllReduceBatchNorm(bn, world))
    return model, "AllReduceBatchNorm"
