"""`make gpu-check` (``common.course.bench.gpu``): the CPU branch, and the mixed-precision step it
times on a GPU."""
import numpy as np
import paddle
import pytest

from common.course.bench import gpu as gpu_check
from common.engine import optimizer_step


def test_without_gpu_it_says_so_and_exits_cleanly(capsys, monkeypatch):
    monkeypatch.setattr("common.runtime.has_gpu", lambda: False)
    assert gpu_check.check_all() == 0
    out = capsys.readouterr().out
    assert out.startswith("No GPU:") and "CPU mode" in out


@pytest.mark.parametrize("amp", [False, True])
def test_check_model_trains_predicts_and_reports(amp):
    r = gpu_check.check_model("tiny", dict(preset="tiny"), size=33, batch=2, steps=1, amp=amp)
    assert r["name"] == "tiny" and r["train_img_s"] > 0 and r["infer_img_s"] > 0
    assert np.isfinite(r["loss"])


def test_scaled_step_equals_plain_step():
    """Loss scaling must not change the update: a GradScaler step (scale, backward, unscale,
    step) gives the same weights as a plain float32 step (auto_cast is a no-op on CPU)."""
    def run(scaler):
        paddle.seed(0)
        layer = paddle.nn.Linear(4, 3)
        opt = paddle.optimizer.SGD(0.1, parameters=layer.parameters())
        x = paddle.ones([2, 4])
        optimizer_step(lambda: layer(x).square().mean(), opt, scaler)
        return layer.weight.numpy()

    plain = run(None)
    scaled = run(paddle.amp.GradScaler(init_loss_scaling=1024.0))
    np.testing.assert_allclose(scaled, plain, rtol=1e-6, atol=1e-7)
    assert not np.allclose(plain, run(None) * 0)      # the step did move the weights


def test_a_failing_model_is_reported_and_fails_the_run(capsys, monkeypatch):
    monkeypatch.setattr("common.runtime.has_gpu", lambda: True)
    monkeypatch.setattr(paddle, "set_device", lambda d: None)
    monkeypatch.setattr(paddle.device.cuda, "get_device_name", lambda: "fake GPU")

    def boom(*a, **k):
        raise FloatingPointError("tiny: loss nan")
    monkeypatch.setattr(gpu_check, "check_model", boom)
    assert gpu_check.check_all(models=["tiny"]) == 1
    assert "tiny             | FAILED: FloatingPointError" in capsys.readouterr().out
