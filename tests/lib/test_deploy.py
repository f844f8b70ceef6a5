"""The fast inference path (common.deploy): batch norm folded into convolutions, static graph,
Paddle Inference with oneDNN; outputs equal to the dynamic eval-mode model."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

from common.data import get_variant
from common.deploy import ENGINES, FastModel, PredictorLayer, create_predictor, export_inference, fold_batchnorm
from common.deploy import fast as fast_module
from common.inference import predict, sliding_window
from common.models import build_model, list_models

# every semantic model (the detectors / panoptic models return dicts) at the tests' size, for
# the 6 classes of the 'context' scenes (GINet reads their names' word vectors)
NOT_SEMANTIC = {"mask_rcnn", "solo", "upsnet", "panoptic_deeplab"}
SEMANTIC = sorted(set(list_models()) - NOT_SEMANTIC)
CLASSES = get_variant("context").classes


def _tiny(name):
    return dict(preset="tiny", **({"classes": CLASSES} if name == "ginet" else {}))
# float32 rounding (rescaled weights, oneDNN's summation order), relative to max(1, |logit|):
# measured up to 1.5e-6 on these models
RTOL = 1e-5


def _randomize_bn(model, seed=0):
    """Running statistics and affine parameters far from the identity a fresh BN starts at
    (a fold that mixed up mean, variance or scale would then show)."""
    rng = np.random.default_rng(seed)
    for layer in model.sublayers():
        if isinstance(layer, (nn.layer.norm._BatchNormBase, nn.BatchNorm)):
            c = layer._mean.shape[0]
            layer._mean.set_value(rng.normal(0, 0.5, c).astype(np.float32))
            layer._variance.set_value(rng.uniform(0.3, 3.0, c).astype(np.float32))
            if layer.weight is not None:
                layer.weight.set_value(rng.uniform(0.5, 2.0, c).astype(np.float32))
                layer.bias.set_value(rng.normal(0, 0.5, c).astype(np.float32))
    return model


def _rel(a, b):
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


def _bn_count(model):
    return sum(isinstance(m, (nn.layer.norm._BatchNormBase, nn.BatchNorm)) for m in model.sublayers())


@pytest.mark.parametrize("name", sorted(SEMANTIC))
def test_fold_batchnorm_equals_eval_model(name):
    paddle.seed(0)
    model = _randomize_bn(build_model(name, 6, **_tiny(name)))
    model.eval()
    n_bn = _bn_count(model)
    folded = fold_batchnorm(model, example=paddle.randn([1, 3, 41, 37]))
    assert not folded.training
    assert _bn_count(model) == n_bn                        # the original is untouched
    assert _bn_count(folded) == n_bn - len(folded.folded_batchnorms)
    if n_bn:
        assert folded.folded_batchnorms, "nothing folded"
    # every BN that runs in eval after a conv goes; the aux heads (train only) and GCU's
    # BN after a graph convolution (a matmul) stay
    left = [n for n, m in folded.named_sublayers() if isinstance(m, (nn.layer.norm._BatchNormBase, nn.BatchNorm))]
    assert all(n.startswith(("aux", "unit.gcus.")) for n in left), left
    for shape in ([1, 3, 33, 47], [2, 3, 50, 29]):          # odd sizes, not the traced one
        x = paddle.randn(shape)
        assert _rel(folded(x).numpy(), model(x).numpy()) < RTOL


class _Leaky(nn.Layer):
    """A conv whose output feeds a BN and, through a functional add, the output too."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2D(3, 4, 3, padding=1), nn.BatchNorm2D(4)
        self.conv2, self.bn2 = nn.Conv2D(4, 4, 1), nn.BatchNorm2D(4)

    def forward(self, x):
        y = self.conv(x)
        z = self.bn(y) + y
        return self.bn2(self.conv2(z))


def _mixed(sync):
    """Conv + BN pairs of every kind; ``sync``: the first BN is a SyncBatchNorm."""
    return nn.Sequential(
        nn.Conv2D(3, 8, 3, padding=1, bias_attr=False),
        nn.SyncBatchNorm(8) if sync else nn.BatchNorm2D(8), nn.ReLU(),
        nn.Conv2D(8, 8, 3, padding=2, dilation=2, groups=8), nn.BatchNorm2D(8),     # depthwise
        nn.Conv2D(8, 12, 1, groups=4, bias_attr=False), nn.BatchNorm2D(12),        # grouped
        nn.Conv2DTranspose(12, 6, 2, stride=2, groups=2), nn.BatchNorm2D(6),       # transposed
        nn.Conv2D(6, 4, 1), nn.BatchNorm(4),                                       # legacy BN
        nn.BatchNorm2D(4))                                      # after a BN: not foldable


def test_fold_handles_grouped_transposed_sync_and_biasless_convs():
    paddle.seed(3)
    model = _randomize_bn(_mixed(sync=True))
    model.eval()
    ref = _mixed(sync=False)               # Paddle's CPU build cannot run SyncBatchNorm itself
    ref.set_state_dict(model.state_dict())
    ref.eval()
    folded = fold_batchnorm(model, example=paddle.randn([1, 3, 9, 11]))
    assert [b for _, b in folded.folded_batchnorms] == ["1", "4", "6", "8", "10"]
    assert isinstance(folded[11], nn.BatchNorm2D) and folded[0].bias is not None
    assert isinstance(model[1], nn.SyncBatchNorm)
    x = paddle.randn([2, 3, 13, 7])
    assert _rel(folded(x).numpy(), ref(x).numpy()) < RTOL


def test_fold_leaves_a_conv_output_used_elsewhere():
    model = _randomize_bn(_Leaky())
    model.eval()
    folded = fold_batchnorm(model, example=paddle.randn([1, 3, 8, 8]))
    assert folded.folded_batchnorms == [("conv2", "bn2")]     # conv/bn would change y + bn(y)
    x = paddle.randn([1, 3, 10, 9])
    assert _rel(folded(x).numpy(), model(x).numpy()) < RTOL


def test_fold_is_wrong_in_train_mode_so_the_copy_refuses_nothing_but_is_eval():
    model = _randomize_bn(build_model("pspnet", 3, depth=18, width=8))
    model.train()
    folded = fold_batchnorm(model, example=paddle.randn([1, 3, 32, 32]))
    assert model.training and not folded.training             # the caller's mode is kept


# ------------------------------------------------------------------ static + Paddle Inference
ENGINE_MODELS = ["deeplabv3", "unet", "fcn8s", "deeplabv3plus", "glore"]


@pytest.mark.parametrize("name", ENGINE_MODELS)
def test_engines_equal_the_dynamic_model(name):
    paddle.seed(1)
    model = _randomize_bn(build_model(name, 6, **_tiny(name)))
    model.eval()
    x = paddle.randn([1, 3, 45, 39])
    want = model(x).numpy()
    for engine in ENGINES:
        with paddle.no_grad():
            fast = FastModel(model, engine)
            got = fast(x).numpy()
            assert _rel(got, want) < RTOL, engine
        if engine in ("static", "inference"):               # a real program, not the fallback
            prog = fast._programs[tuple(x.shape)]
            assert prog is not fast.folded and isinstance(prog, PredictorLayer) == (engine == "inference")


def test_a_program_that_differs_is_not_used(monkeypatch):
    """The engines check each program on its first input; a wrong one (here: a predictor
    returning zeros) is dropped with a warning, and the folded model answers."""
    model = _randomize_bn(build_model("deeplabv3", 6, preset="tiny"))
    model.eval()
    monkeypatch.setattr(PredictorLayer, "forward", lambda self, x: paddle.zeros([1, 6, 21, 19]))
    fast = FastModel(model, "inference")
    x = paddle.randn([1, 3, 21, 19])
    with pytest.warns(UserWarning, match=r"oneDNN on\): outputs differ.*oneDNN off\): outputs differ"):
        got = fast(x).numpy()
    assert fast._programs[(1, 3, 21, 19)] is fast.folded
    assert _rel(got, model(x).numpy()) < RTOL


class _SizeTrap(nn.Layer):
    """Python code that reads the input size at trace time and goes wrong when it is
    unknown (-1 or a symbolic tensor): its any-size program computes zeros, its per-shape
    programs are right. The engines must find that out on the first input, not trust it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 2, 3, padding=1)

    def forward(self, x):
        h = x.shape[2]
        y = self.conv(x)
        if not isinstance(h, int) or h < 0:
            y = y * 0.0
        return y


@pytest.mark.parametrize("engine", ["static", "inference"])
def test_a_program_traced_without_the_size_is_checked_per_shape(engine, recwarn):
    model = _SizeTrap()
    model.eval()
    fast = FastModel(model, engine)
    for i, shape in enumerate(([1, 3, 10, 7], [1, 3, 9, 8])):
        x = paddle.randn(shape)
        with paddle.no_grad():
            got = fast(x).numpy()
        assert _rel(got, model(x).numpy()) < RTOL and np.abs(got).max() > 0
        assert fast._programs[tuple(shape)] is not fast.folded    # a per-shape program
        # the any-size program differs on the first shape; after that it is not tried again
        assert [("outputs differ" in str(w.message)) for w in recwarn] == [True] * (i == 0), i
        recwarn.clear()
    assert (fast.program_folder() / f"any.{fast.device}.failed").is_file()


def _count_exports(monkeypatch):
    calls, real = [], fast_module.export_inference
    monkeypatch.setattr(fast_module, "export_inference",
                        lambda *a, **kw: calls.append(kw.get("image_shape")) or real(*a, **kw))
    return calls


def test_a_second_run_reuses_the_stored_program(monkeypatch):
    """The exported program is kept under the model's fingerprint: the same model built
    again (as a new process would) exports nothing, and a changed weight exports anew."""
    calls = _count_exports(monkeypatch)
    x = paddle.randn([1, 3, 21, 19])

    def run():
        paddle.seed(6)
        model = _randomize_bn(build_model("deeplabv3", 3, preset="tiny"))
        model.eval()
        return model, FastModel(model, "inference")

    model, fast = run()
    want = model(x).numpy()
    assert _rel(fast(x).numpy(), want) < RTOL and calls == [None]      # one any-size export
    model, again = run()
    checks, expected = [], FastModel._expected
    monkeypatch.setattr(FastModel, "_expected", lambda self, x: checks.append(x.shape) or expected(self, x))
    assert _rel(again(x).numpy(), want) < RTOL and calls == [None]     # reused
    assert checks == []                       # and checked at this shape before: not again
    y = paddle.randn([1, 3, 17, 22])
    assert _rel(again(y).numpy(), model(y).numpy()) < RTOL and calls == [None]
    assert checks == [[1, 3, 17, 22]]         # a new shape is checked
    assert again.program_folder() == fast.program_folder() and again.folded is None
    assert isinstance(again._programs[(1, 3, 21, 19)], PredictorLayer)
    model.classifier.weight.set_value(model.classifier.weight + 0.5)
    changed = FastModel(model, "inference")
    assert _rel(changed(x).numpy(), model(x).numpy()) < RTOL and calls == [None, None]
    assert changed.program_folder() != fast.program_folder()


def test_the_fingerprint_follows_weights_buffers_and_settings():
    from common.deploy import model_fingerprint

    paddle.seed(7)
    a = build_model("deeplabv3", 3, preset="tiny")
    paddle.seed(7)
    b = build_model("deeplabv3", 3, preset="tiny")
    assert model_fingerprint(a) == model_fingerprint(b)
    bn = next(m for m in b.sublayers() if isinstance(m, nn.BatchNorm2D))
    bn._mean.set_value(bn._mean + 1.0)                     # a buffer, not a parameter
    assert model_fingerprint(a) != model_fingerprint(b)
    paddle.seed(7)
    c = build_model("deeplabv3", 3, output_stride=8, preset="tiny")
    assert [p.shape for p in a.parameters()] == [p.shape for p in c.parameters()]
    assert model_fingerprint(a) != model_fingerprint(c)    # same weights, other dilations
    before = model_fingerprint(a)
    a.output_stride = 8                                    # a plain attribute the repr omits
    assert model_fingerprint(a) != before

    class Anonymous(nn.Layer):                             # source Python cannot find
        def forward(self, x):
            return x
    Anonymous.__module__ = "no_such_module"
    assert model_fingerprint(Anonymous()) is None
    fast = FastModel(Anonymous(), "static")
    assert "segcourse_export_" in fast.program_folder().name   # a temporary folder, not the cache


def test_a_failed_program_is_remembered_and_retried_once_deleted(monkeypatch):
    calls = _count_exports(monkeypatch)
    model = _randomize_bn(build_model("deeplabv3", 6, preset="tiny"))
    model.eval()
    x = paddle.randn([1, 3, 21, 19])
    real_forward = PredictorLayer.forward
    monkeypatch.setattr(PredictorLayer, "forward", lambda self, x: paddle.zeros([1, 6, 21, 19]))
    with pytest.warns(UserWarning, match="outputs differ"):
        FastModel(model, "inference")(x)
    assert calls == [None, (1, 3, 21, 19)]
    folder = FastModel(model, "inference").program_folder()
    failed = sorted(p.name for p in folder.glob("*.failed"))
    assert failed == ["1x3x21x19.cpu.failed", "any.cpu.failed"]
    with pytest.warns(UserWarning, match="remembered in .*1x3x21x19.cpu.failed; delete it to retry"):
        got = FastModel(model, "inference")(x).numpy()
    assert calls == [None, (1, 3, 21, 19)]                     # nothing exported again
    assert _rel(got, model(x).numpy()) < RTOL                  # the folded model answered
    monkeypatch.setattr(PredictorLayer, "forward", real_forward)
    for name in failed:
        (folder / name).unlink()
    fast = FastModel(model, "inference")
    assert _rel(fast(x).numpy(), model(x).numpy()) < RTOL and calls == [None, (1, 3, 21, 19)]
    assert isinstance(fast._programs[(1, 3, 21, 19)], PredictorLayer)   # the stored programs


def test_a_cache_that_cannot_be_written_falls_back_to_a_temporary_folder(tmp_path):
    model = _randomize_bn(build_model("deeplabv3", 3, preset="tiny"))
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    fast = FastModel(model, "inference", cache_dir=blocked / "exports")
    x = paddle.randn([1, 3, 21, 19])
    assert _rel(fast(x).numpy(), model(x).numpy()) < RTOL
    assert isinstance(fast._programs[(1, 3, 21, 19)], PredictorLayer)
    assert "segcourse_export_" in fast.program_folder().name and "a_file" in fast.notes["cache"][0]
    assert blocked.read_text() == "not a folder"


def test_without_a_cache_the_programs_go_with_the_model():
    model = _randomize_bn(build_model("deeplabv3", 3, preset="tiny"))
    fast = FastModel(model, "inference", cache_dir=False)
    x = paddle.randn([1, 3, 21, 19])
    assert _rel(fast(x).numpy(), model(x).numpy()) < RTOL
    folder = fast.program_folder()
    assert folder.is_dir() and not folder.is_relative_to(__import__("common.deploy").deploy.export_cache())
    del fast
    import gc
    gc.collect()
    assert not folder.exists()


def test_export_folded_program_and_predictor_without_onednn(tmp_path):
    paddle.seed(2)
    model = _randomize_bn(build_model("pspnet", 4, preset="tiny"))
    model.eval()
    prefix = export_inference(model, tmp_path / "m" / "model", image_shape=[2, 3, 35, 33], fold_bn=True)
    assert _bn_count(model) > 0                               # folding worked on a copy
    x = paddle.randn([2, 3, 35, 33])
    want = model(x).numpy()
    for onednn in (False, True):
        got = PredictorLayer(create_predictor(prefix, onednn=onednn, threads=1))(x).numpy()
        assert _rel(got, want) < RTOL
    with pytest.raises(FileNotFoundError, match="nope"):
        create_predictor(tmp_path / "nope")
    with pytest.raises(ValueError, match="device"):
        create_predictor(prefix, device="tpu")


def test_fast_model_in_sliding_window_and_predict():
    paddle.seed(4)
    model = _randomize_bn(build_model("deeplabv3", 3, preset="tiny"))
    model.eval()
    fast = FastModel(model, "inference")
    x = paddle.randn([1, 3, 40, 56])
    got, want = sliding_window(fast, x, 32, 24).numpy(), sliding_window(model, x, 32, 24).numpy()
    assert _rel(got, want) < RTOL
    assert list(fast._programs) == [(1, 3, 32, 32)]           # one window shape so far
    agree = (predict(fast, x) == predict(model, x)).mean()
    assert agree > 0.999                                      # argmax ties may flip on rounding
    # DeepLab traces with an unknown size: one program serves both shapes
    assert fast._programs[(1, 3, 32, 32)] is fast._programs[(1, 3, 40, 56)]
    assert isinstance(fast._programs[(1, 3, 40, 56)], PredictorLayer)
    with pytest.raises(RuntimeError, match="inference only"):
        fast.train()
    with pytest.raises(ValueError, match="engine"):
        FastModel(model, "onnx")
