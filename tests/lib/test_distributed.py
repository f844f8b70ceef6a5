"""common.distributed: BatchNorm synchronised across data-parallel processes (the two-process
runs themselves are in tests/lib/test_engine.py)."""
import copy

import numpy as np
import paddle
import pytest

from common import distributed
from common.distributed import AllReduceBatchNorm, sync_batchnorm


def _bn_model():
    return paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, padding=1), paddle.nn.BatchNorm2D(4), paddle.nn.ReLU(),
                                paddle.nn.Sequential(paddle.nn.Conv2D(4, 4, 1), paddle.nn.BatchNorm2D(4)))


def test_allreduce_batchnorm_is_batchnorm_in_one_process():
    """Outputs, input and weight gradients, running statistics and eval mode of Paddle's BatchNorm2D."""
    bn = paddle.nn.BatchNorm2D(5)
    bn.weight.set_value(paddle.rand([5]) + 0.5)
    bn.bias.set_value(paddle.rand([5]))
    ref, ours = copy.deepcopy(bn), AllReduceBatchNorm(copy.deepcopy(bn), world=1)
    for _ in range(3):
        x = paddle.randn([3, 5, 7, 9]) * 3 + 2
        xa, xb = x.clone(), x.clone()
        xa.stop_gradient = xb.stop_gradient = False
        ya, yb = ref(xa), ours(xb)
        g = paddle.randn(ya.shape)
        (ya * g).sum().backward()
        (yb * g).sum().backward()
        np.testing.assert_allclose(yb.numpy(), ya.numpy(), atol=1e-5)
        np.testing.assert_allclose(xb.grad.numpy(), xa.grad.numpy(), atol=1e-5)
        np.testing.assert_allclose(ours.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ours._mean.numpy(), ref._mean.numpy(), atol=1e-5)
        np.testing.assert_allclose(ours._variance.numpy(), ref._variance.numpy(), rtol=1e-5)
        ref.clear_gradients()
        ours.clear_gradients()
    ref.eval()
    ours.eval()
    x = paddle.randn([2, 5, 4, 3])
    np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), atol=1e-5)
    assert list(ours.state_dict()) == list(ref.state_dict())          # checkpoints load into either


def test_one_process_or_no_batchnorm_is_left_alone():
    model = _bn_model()
    assert sync_batchnorm(model, world=1, device="cpu") == (model, None)
    assert isinstance(model[1], paddle.nn.BatchNorm2D)
    plain = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3))
    assert sync_batchnorm(plain, world=2, device="cpu") == (plain, None)


def test_cpu_processes_get_allreduce_batchnorm():
    model = _bn_model()
    before = [id(p) for p in model.parameters()]
    keys = list(model.state_dict())
    out, kind = sync_batchnorm(model, world=2, device="cpu")
    assert out is model and kind == "AllReduceBatchNorm"
    assert isinstance(model[1], AllReduceBatchNorm) and isinstance(model[3][1], AllReduceBatchNorm)
    assert not any(isinstance(s, paddle.nn.BatchNorm2D) for s in model.sublayers())
    assert [id(p) for p in model.parameters()] == before and list(model.state_dict()) == keys


def test_gpu_processes_get_paddles_syncbatchnorm(monkeypatch):
    monkeypatch.setattr(distributed, "_has_sync_kernel", lambda device: device.startswith("gpu"))
    model = _bn_model()
    out, kind = sync_batchnorm(model, world=2, device="gpu:0")
    assert kind == "SyncBatchNorm" and isinstance(out[1], paddle.nn.SyncBatchNorm)
    assert isinstance(out[3][1], paddle.nn.SyncBatchNorm)


def test_kernel_probe_tells_the_truth_on_cpu():
    """Paddle 3.3 has no CPU sync_batch_norm kernel (hence AllReduceBatchNorm). If a Paddle
    release adds one, the probe says so and Paddle's own layer is used instead."""
    layer = paddle.nn.SyncBatchNorm(4)
    x = paddle.randn([2, 4, 3, 3])
    if distributed._has_sync_kernel("cpu"):
        layer(x)
    else:
        with pytest.raises(Exception, match="sync_batch_norm"):
            layer(x)
