"""Pretrained backbones (offline: random-init paddle.vision state dicts saved to files),
save_pretrained / load_pretrained, export_inference."""
import numpy as np
import paddle
import pytest

from common.deploy import export_inference
from common.models import build_model, list_models, load_pretrained, save_pretrained
from common.models.pretrained import resnet_key_map
from common.models.backbones.vgg import vgg_key_map
from test_model_contract import K, tiny


@pytest.fixture(scope="module")
def resnet_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    files = {}
    for depth in (18, 50):
        paddle.seed(depth)
        sd = getattr(paddle.vision.models, f"resnet{depth}")().state_dict()
        files[depth] = (str(d / f"resnet{depth}.pdparams"), {k: v.numpy() for k, v in sd.items()})
        paddle.save(sd, files[depth][0])
    return files


def assert_backbone_equals_file(model, file_state, key_map):
    own = model.backbone.state_dict()
    mapped = {key_map(k): v for k, v in file_state.items() if key_map(k) is not None}
    assert set(own) == set(mapped), sorted(set(own) ^ set(mapped))[:5]
    for k, v in own.items():
        np.testing.assert_array_equal(v.numpy(), mapped[k], err_msg=k)


@pytest.mark.parametrize("name, kwargs", [
    ("deeplabv3", dict(depth=50, output_stride=16)),
    ("deeplabv3", dict(depth=50, output_stride=8)),      # more dilation, same kernels
    ("pspnet", dict(depth=50)),
])
def test_resnet50_backbone_loads_every_tensor(resnet_files, name, kwargs):
    path, state = resnet_files[50]
    fresh = build_model(name, 5, **kwargs)
    assert not np.array_equal(fresh.backbone.conv1.weight.numpy(), state["conv1.weight"])
    model = build_model(name, 5, pretrained_backbone=path, **kwargs)
    assert_backbone_equals_file(model, state, resnet_key_map)
    rep = model.pretrained_report
    assert rep["missing"] == [] and rep["unexpected"] == [] and rep["dropped"] == ["fc.bias", "fc.weight"]


@pytest.mark.parametrize("name, kwargs", [("pspnet", dict(depth=18)),
                                          ("deeplabv3plus", dict(backbone="resnet", depth=18))])
def test_resnet18_backbone(resnet_files, name, kwargs):
    path, state = resnet_files[18]
    model = build_model(name, 3, pretrained_backbone=path, **kwargs)
    assert_backbone_equals_file(model, state, resnet_key_map)
    model.eval()
    assert model(paddle.rand([1, 3, 33, 35])).shape == [1, 3, 33, 35]


def test_vgg16_backbone(tmp_path):
    sd = paddle.vision.models.vgg16(num_classes=0).state_dict()    # conv layers only
    path = str(tmp_path / "vgg16.pdparams")
    paddle.save(sd, path)
    state = {k: v.numpy() for k, v in sd.items()}
    model = build_model("deeplabv1", 4, pretrained_backbone=path)
    assert_backbone_equals_file(model, state, vgg_key_map(False))
    with pytest.warns(UserWarning, match=r"fc6\.0\.weight"):     # FCN's FC6/FC7: not in file
        fcn = build_model("fcn8s", 4, fc_channels=32, pretrained_backbone=path)
    assert "fc7.0.bias" in fcn.pretrained_report["missing"]
    for k, v in fcn.backbone.state_dict().items():
        if not k.startswith("fc"):
            np.testing.assert_array_equal(v.numpy(), state[next(
                f for f in state if vgg_key_map(False)(f) == k)])


def test_true_uses_paddle_vision_weights_via_paddle_cache(resnet_files, monkeypatch):
    import paddle.utils.download as dl

    calls = []
    monkeypatch.setattr(dl, "get_weights_path_from_url",
                        lambda url, md5=None: calls.append((url, md5)) or resnet_files[18][0])
    model = build_model("pspnet", 2, depth=18, pretrained_backbone=True)
    assert calls == [tuple(paddle.vision.models.resnet.model_urls["resnet18"])]
    assert_backbone_equals_file(model, resnet_files[18][1], resnet_key_map)
    with pytest.raises(ValueError, match="width=64"):
        build_model("pspnet", 2, depth=18, width=8, pretrained_backbone=True)


def test_errors_and_reports_by_name(resnet_files, tmp_path):
    path, state = resnet_files[18]
    with pytest.raises(FileNotFoundError, match="nope.pdparams"):
        build_model("pspnet", 2, depth=18, pretrained_backbone=str(tmp_path / "nope.pdparams"))
    with pytest.raises(ValueError, match=r"conv1\.weight.*\[8, 3, 7, 7\]"):
        build_model("pspnet", 2, depth=18, width=8, pretrained_backbone=path)
    with pytest.raises(ValueError, match="ImageNet weights exist for"):
        build_model("unet", 2, pretrained_backbone=path)
    with pytest.raises(ValueError, match="no key matches"):
        build_model("deeplabv1", 2, width=8, pretrained_backbone=path)
    extra = dict(paddle.load(path), **{"head.weight": paddle.zeros([2])})
    paddle.save(extra, str(tmp_path / "extra.pdparams"))
    with pytest.warns(UserWarning, match=r"head\.weight"):
        m = build_model("pspnet", 2, depth=18, pretrained_backbone=str(tmp_path / "extra.pdparams"))
    assert m.pretrained_report["unexpected"] == ["head.weight"]


# ------------------------------------------------------------ save / load / export
def test_save_and_load_pretrained(tmp_path):
    paddle.seed(1)
    model = build_model("deeplabv3plus", 3, backbone="resnet", depth=18, width=8, rates=(2, 4, 6))
    model.eval()
    save_pretrained(model, tmp_path / "m", classes=["a", "b", "c"])
    again = load_pretrained(tmp_path / "m")
    assert again.config["classes"] == ["a", "b", "c"] and again.config["name"] == "deeplabv3plus"
    x = paddle.rand([1, 3, 29, 31])
    np.testing.assert_array_equal(again(x).numpy(), model(x).numpy())
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_pretrained(tmp_path)
    with pytest.raises(ValueError, match="build_model"):
        save_pretrained(paddle.nn.Conv2D(3, 2, 1), tmp_path / "x")


@pytest.mark.parametrize("name", list_models())
def test_every_model_round_trips_through_the_lazy_build(tmp_path, name):
    """load_pretrained builds without random initialisation (paddle.LazyGuard) and then sets
    every weight: the rebuilt model computes exactly what the saved one did."""
    paddle.seed(3)
    model = build_model(name, K, **tiny(name))
    model.eval()
    save_pretrained(model, tmp_path / name)
    again = load_pretrained(tmp_path / name)
    x = paddle.rand([1, 3, 64, 64])
    with paddle.no_grad():
        got, want = again(x), model(x)
    got, want = _leaves(got), _leaves(want)
    assert [k for k, _ in got] == [k for k, _ in want] and want
    for (key, g), (_, w) in zip(got, want):
        np.testing.assert_array_equal(g, w, err_msg=key)


def _leaves(out, key=""):
    """[(path, array)] of a nested output (tensors, arrays, dicts, lists), in a fixed order."""
    if isinstance(out, dict):
        return [leaf for k in sorted(out) for leaf in _leaves(out[k], f"{key}/{k}")]
    if isinstance(out, (list, tuple)):
        return [leaf for i, o in enumerate(out) for leaf in _leaves(o, f"{key}/{i}")]
    return [(key, np.asarray(out.numpy() if hasattr(out, "numpy") else out))]


@pytest.mark.parametrize("name, kwargs", [
    ("tiny", {}), ("deeplabv3plus", dict(backbone="resnet", depth=18, width=8, rates=(2, 4, 6)))])
def test_export_inference_matches_dynamic(tmp_path, name, kwargs):
    paddle.seed(2)
    model = build_model(name, 4, **kwargs)
    model.eval()
    prefix = export_inference(model, tmp_path / "export" / "model")
    static = paddle.jit.load(str(prefix))
    static.eval()
    for shape in ([1, 3, 37, 45], [2, 3, 64, 48]):
        x = paddle.rand(shape)
        np.testing.assert_allclose(static(x).numpy(), model(x).numpy(), atol=1e-4)
