"""VGG16 backbone and FCN-32s/16s/8s: shapes on odd sizes, gradients, learning on a tiny
synthetic set, and loading paddle.vision VGG16 weights (saved locally, no download)."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

from common.data import make_scenes, to_tensor_arrays
from common.models import build_model
from common.models.backbones.vgg import VGG16, vgg_key_map


@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_fcn_any_size(name, upsample):
    model = build_model(name, 5, width=4, upsample=upsample)
    model.eval()
    for hw in [(33, 47), (1, 1), (64, 32), (97, 95)]:
        assert tuple(model(paddle.randn([2, 3, *hw])).shape) == (2, 5, *hw)


def test_fcn_forward_backward_odd():
    model = build_model("fcn8s", 3, width=4)
    model.train()
    y = model(paddle.randn([2, 3, 45, 37]))
    assert tuple(y.shape) == (2, 3, 45, 37)
    y.mean().backward()
    for layer in (model.backbone.stage1[0], model.score_fr, model.score_pool3, model.up2_pool4.deconv):
        assert layer.weight.grad is not None and float(layer.weight.grad.abs().sum()) > 0
    # the final up-sampling is fixed bilinear, as in the paper (Section 4.3); learn_final=True learns it
    assert model.up_final.deconv.weight.stop_gradient and model.up_final.deconv.weight.grad is None
    learned = build_model("fcn8s", 3, width=4, learn_final=True)
    learned(paddle.randn([1, 3, 32, 32])).mean().backward()
    assert float(learned.up_final.deconv.weight.grad.abs().sum()) > 0


def test_final_upsample_fixed_through_training():
    # an optimiser step moves the 2x layers but leaves the final 8x layer at its bilinear start
    model = build_model("fcn8s", 3, width=4)
    final, up2 = model.up_final.deconv.weight.numpy().copy(), model.up2_fr.deconv.weight.numpy().copy()
    opt = paddle.optimizer.Adam(1e-2, parameters=model.parameters())
    model(paddle.randn([2, 3, 32, 32])).square().mean().backward()
    opt.step()
    np.testing.assert_array_equal(model.up_final.deconv.weight.numpy(), final)
    assert np.abs(model.up2_fr.deconv.weight.numpy() - up2).max() > 0


def test_upsample_starts_bilinear():
    # the 2x transposed conv is initialised to bilinear. A constant map cannot tell (any kernel
    # whose taps sum to 1 per phase keeps it constant); a ramp can: bilinear interpolation of
    # f(i, j) = i + 10 j at output pixel o reads f at source coordinate (o + 0.5) / 2 - 0.5
    model = build_model("fcn16s", 2, width=4)
    i, j = np.mgrid[0:6, 0:6].astype("float32")
    ramp = np.broadcast_to(i + 10 * j, (1, 2, 6, 6)).copy()
    up = model.up2_fr.deconv(paddle.to_tensor(ramp))
    assert tuple(up.shape) == (1, 2, 12, 12)
    s = (np.arange(12) + 0.5) / 2 - 0.5
    expected = s[:, None] + 10 * s[None, :]
    np.testing.assert_allclose(up.numpy()[:, :, 1:-1, 1:-1], np.broadcast_to(expected[1:-1, 1:-1], (1, 2, 10, 10)),
                               atol=1e-4)
    # the skip score layers start at zero, so FCN-16s starts as FCN-32s
    assert float(model.score_pool4.weight.abs().sum()) == 0


def test_bad_args():
    with pytest.raises(ValueError, match="upsample"):
        build_model("fcn8s", 3, width=4, upsample="nearest")


@pytest.mark.filterwarnings("ignore:When training, we now always track")
@pytest.mark.parametrize("name", ["fcn32s", "fcn8s"])
def test_fcn_learns(name, fit_tiny):
    # 64 px: at 32 px FCN-32s's scores are one pixel, which a fixed bilinear up-sampling cannot shape
    images, labels = make_scenes(4, 64, seed=0)
    x, y = zip(*[to_tensor_arrays(i, l) for i, l in zip(images, labels)])
    x, y = paddle.to_tensor(np.stack(x)), paddle.to_tensor(np.stack(y).astype("int64"))
    model = build_model(name, 7, width=4, batch_norm=True, dropout=0.0)
    losses = fit_tiny(model, lambda m: paddle.nn.functional.cross_entropy(m(x), y, axis=1), steps=30, lr=3e-3)
    assert losses[-1] < 0.6 * losses[0], losses


def test_key_map_names():
    km = vgg_key_map(batch_norm=False)
    assert km("features.0.weight") == "stage1.0.weight"
    assert km("features.5.bias") == "stage2.0.bias"        # after conv, relu, conv, relu, pool
    assert km("features.28.weight") == "stage5.4.weight"
    assert km("classifier.0.weight") == "fc6.0.weight" and km("classifier.6.weight") is None
    kb = vgg_key_map(batch_norm=True)
    assert kb("features.1._mean") == "stage1.1._mean" and kb("features.7.weight") == "stage2.0.weight"


def test_pretrained_paddle_vision_vgg16(tmp_path):
    """paddle.vision's own vgg16 (randomly initialised, no classifier to keep it small):
    every feature parameter maps, and the features agree."""
    ref = paddle.vision.models.vgg16(num_classes=0)
    path = str(tmp_path / "vgg16.pdparams")
    paddle.save(ref.state_dict(), path)
    ours = VGG16(width=64, pretrained=path)
    x = paddle.randn([1, 3, 32, 32])
    np.testing.assert_allclose(ours(x)[4].numpy(), ref.features(x).numpy(), atol=1e-4, rtol=1e-4)
    # a model of the wrong size is refused with the file name
    with pytest.raises(ValueError, match="vgg16.pdparams"):
        VGG16(width=8, pretrained=path)
    with pytest.raises(FileNotFoundError):
        VGG16(width=8, pretrained=str(tmp_path / "missing.pdparams"))


def test_pretrained_fc_as_conv_bn(tmp_path):
    """A small paddle.vision VGG16-BN (make_layers with width 8) plus a classifier of the
    same structure: FC6/FC7 load as convs and give the classifier's outputs at the centre."""
    from paddle.vision.models.vgg import VGG, cfgs, make_layers

    w = 8
    cfg = [v if v == "M" else v * w // 64 for v in cfgs["D"]]
    ref = VGG(make_layers(cfg, batch_norm=True), num_classes=0)
    classifier = nn.Sequential(nn.Linear(8 * w * 49, 32), nn.ReLU(), nn.Dropout(),
                               nn.Linear(32, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, 10))
    state = dict(ref.state_dict())
    state.update({f"classifier.{k}": v for k, v in classifier.state_dict().items()})
    path = str(tmp_path / "vgg16_bn_small.pdparams")
    paddle.save(state, path)
    ours = VGG16(width=w, batch_norm=True, fc=True, fc_channels=32, pretrained=path)
    ref.eval(), classifier.eval(), ours.eval()
    x = paddle.randn([1, 3, 224, 224])                      # pool5 is 7x7, as in ImageNet
    fc7 = ours(x)[5]
    expected = classifier[:5](ref(x).flatten(1))
    np.testing.assert_allclose(fc7.numpy()[:, :, 3, 3], expected.numpy(), atol=1e-4, rtol=1e-4)


def test_vgg_deeplab_layout():
    vgg = VGG16(width=4, deeplab=True)
    feats = vgg(paddle.randn([1, 3, 33, 41]))
    assert [tuple(f.shape[2:]) for f in feats] == [(17, 21), (9, 11), (5, 6), (5, 6), (5, 6)]
    assert vgg.stage5[0]._dilation == [2, 2] and vgg.strides == [2, 4, 8, 8, 8]
