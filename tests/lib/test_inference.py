"""common.inference: plain, sliding-window and multi-scale + flip inference, evaluation,
and the Trainer using the same path."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

from common.data import SyntheticScenes
from common.engine import Trainer
from common.inference import evaluate, predict, predict_logits, predict_probs, sliding_window
from common.metrics import SegMetric
from common.models import build_model


class Pointwise(nn.Layer):
    """A 1x1 convolution: its logits at a pixel do not depend on the window around it,
    so any tiling must reproduce the plain forward pass exactly."""

    def __init__(self, k=5):
        super().__init__()
        self.conv = nn.Conv2D(3, k, 1)

    def forward(self, x):
        return self.conv(x)


def _images(n=2, h=40, w=40, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 3, h, w)).astype(np.float32)


def test_trainer_sliding_window_never_leaves_nan():
    """window=(10, 25) (stride larger than the window) used to leave 61% of a 40x40 image NaN."""
    data = SyntheticScenes(2, 40, seed=0)
    t = Trainer(build_model("tiny", 7, width=8), data, iters=1, batch_size=2, progress=False)
    x = np.stack([data[i][0] for i in range(2)])
    with pytest.raises(ValueError, match=r"stride 25 is larger than window 10"):
        t.predict_probs(x, window=(10, 25))
    for window in [(10, 10), (10, 7), (13, 9), (64, 8), ((12, 40), (5, 40))]:
        p = t.predict_probs(x, window=window).numpy()
        assert np.isfinite(p).all(), window
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("window, stride", [(10, 10), (10, 3), (16, 9), (64, 64), (7, 7),
                                            ((9, 20), (4, 20)), ((37, 5), (37, 5))])
def test_sliding_window_of_a_pointwise_model_equals_plain(window, stride):
    paddle.seed(0)
    model = Pointwise()
    x = _images(2, 37, 50)
    plain = predict_logits(model, x).numpy()
    tiled = sliding_window(model, x, window, stride, num_classes=5).numpy()
    np.testing.assert_allclose(tiled, plain, rtol=1e-5, atol=1e-5)


def test_sliding_window_averages_overlapping_windows():
    paddle.seed(0)
    model = build_model("tiny", 4, width=8, depth=2)          # 3x3 convs: borders matter
    x = paddle.to_tensor(_images(1, 40, 40))
    out = sliding_window(model, x, 24, 16).numpy()            # windows at 0 and 16 per axis
    model.eval()
    crop = lambda y, x0: model(x[:, :, y:y + 24, x0:x0 + 24]).numpy()   # noqa: E731
    # (5, 5) lies in the top-left window only; (20, 5) in two; (20, 20) in all four
    np.testing.assert_allclose(out[..., 5, 5], crop(0, 0)[..., 5, 5], atol=1e-6)
    np.testing.assert_allclose(out[..., 20, 5], (crop(0, 0)[..., 20, 5] + crop(16, 0)[..., 4, 5]) / 2,
                               atol=1e-6)
    four = crop(0, 0)[..., 20, 20] + crop(0, 16)[..., 20, 4] + crop(16, 0)[..., 4, 20] + crop(16, 16)[..., 4, 4]
    np.testing.assert_allclose(out[..., 20, 20], four / 4, atol=1e-6)
    # the last window is aligned to the border: (39, 39) comes from the window at 16
    np.testing.assert_allclose(out[..., 39, 39], crop(16, 16)[..., 23, 23], atol=1e-6)


def test_sliding_window_argument_errors():
    model = Pointwise()
    x = _images(1, 20, 20)
    for window, stride, match in [(0, 1, "window"), (8, 0, "stride"), (8, 9, "larger than window"),
                                  (8, 2.5, "stride")]:
        with pytest.raises(ValueError, match=match):
            sliding_window(model, x, window, stride)
    with pytest.raises(ValueError, match="5 channels, num_classes is 3"):
        sliding_window(model, x, 8, 4, num_classes=3)


def test_predict_probs_multiscale_flip_is_the_mean_of_its_passes():
    paddle.seed(0)
    model = build_model("tiny", 4, width=8, depth=2)
    x = paddle.to_tensor(_images(2, 30, 34))
    model.eval()
    F = paddle.nn.functional
    expected = 0
    for s in (0.5, 1.0):
        xs = x if s == 1 else F.interpolate(x, size=(15, 17), mode="bilinear")
        for flipped in (False, True):
            p = F.softmax(model(xs.flip([3]) if flipped else xs), axis=1)
            p = p.flip([3]) if flipped else p
            expected = expected + F.interpolate(p, size=(30, 34), mode="bilinear")
    model.train()
    got = predict_probs(model, x, scales=(0.5, 1.0), flip=True)
    assert model.training                                     # mode restored
    np.testing.assert_allclose(got.numpy(), expected.numpy() / 4, atol=1e-6)
    np.testing.assert_allclose(predict_probs(model, x).numpy(),
                               F.softmax(predict_logits(model, x), axis=1).numpy(), atol=1e-7)
    assert (predict(model, x, scales=(0.5, 1.0), flip=True) == got.argmax(1).numpy()).all()
    with pytest.raises(ValueError, match="scales"):
        predict_probs(model, x, scales=(0.0, 1.0))


def test_predict_logits_takes_the_main_output_of_lists_and_dicts():
    class Aux(nn.Layer):
        def __init__(self, wrap):
            super().__init__()
            self.conv, self.wrap = nn.Conv2D(3, 3, 1), wrap

        def forward(self, x):
            y = self.conv(x)
            return [y, y * 0] if self.wrap == "list" else dict(out=y, aux=y * 0)

    x = _images(1, 8, 8)
    for wrap in ("list", "dict"):
        m = Aux(wrap)
        np.testing.assert_array_equal(predict_logits(m, x).numpy(), m.conv(paddle.to_tensor(x)).numpy())


def test_evaluate_equals_trainer_and_a_hand_loop():
    train, val = SyntheticScenes(4, 32, seed=0), SyntheticScenes(5, 32, seed=10_000)
    paddle.seed(0)
    model = build_model("tiny", train.num_classes, width=8)
    t = Trainer(model, train, val, iters=1, batch_size=2, progress=False)
    scores = evaluate(model, val, train.num_classes, batch_size=3)
    metric = SegMetric(train.num_classes)
    for i in range(len(val)):
        x, y = val[i]
        metric.update(predict(model, x[None]), y[None])
    ref = metric.compute()
    trainer_scores = t.evaluate()
    for s in (scores, trainer_scores):
        assert s["miou"] == pytest.approx(ref["miou"]) and s["pixel_acc"] == pytest.approx(ref["pixel_acc"])
        np.testing.assert_allclose(s["iou"], ref["iou"])
    xs = np.stack([val[i][0] for i in range(3)])
    assert (t.predict(xs) == predict(model, xs)).all()
