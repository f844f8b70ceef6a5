"""U-Net (valid and same variants) and PSPNet: shapes on odd sizes, parameter counts, the
PSP module, the overlap-tile alignment, and learning on a tiny synthetic set."""
import numpy as np
import paddle
import pytest

from common.data import SyntheticScenes
from common.losses import SegLoss
from common.models import build_model
from common.models.layers import count_parameters
from common.models.pspnet import PSPModule
from common.models.unet import DoubleConv, Down, Up, center_crop, valid_input_size, valid_output_size


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_unet_any_size_forward_backward(padding):
    model = build_model("unet", 5, width=4, depth=3, padding=padding)
    model.train()
    for h, w in [(17, 23), (9, 40)]:
        x = paddle.randn([2, 3, h, w])
        x.stop_gradient = False
        y = model(x)
        assert tuple(y.shape) == (2, 5, h, w)
        y.mean().backward()
        assert float(x.grad.abs().sum()) > 0
        assert all(p.grad is not None for p in model.parameters() if not p.stop_gradient)
        model.clear_gradients()


def test_unet_valid_geometry_matches_paper():
    assert valid_output_size(572) == 388          # Fig. 1 of the paper
    assert valid_output_size(571) is None         # an odd map would be pooled
    assert valid_input_size(388) == (572, 92)
    assert valid_input_size(17) == (204, 92)
    # The parts: the skip is centre-cropped to the upsampled map (64x64 -> 56x56 at level 3).
    skip, bottom = paddle.randn([1, 4, 64, 64]), paddle.randn([1, 8, 28, 28])
    up = Up(8, 4, padding="valid")
    assert tuple(up(bottom, skip).shape) == (1, 4, 52, 52)
    assert tuple(Down(4, 8, "valid")(skip).shape) == (1, 8, 28, 28)
    assert tuple(DoubleConv(3, 4, "valid")(paddle.randn([1, 3, 10, 9])).shape) == (1, 4, 6, 5)
    x = paddle.arange(2 * 7 * 6, dtype="float32").reshape([1, 2, 7, 6])
    np.testing.assert_array_equal(center_crop(x, (3, 2)).numpy(), x.numpy()[:, :, 2:5, 2:4])


def test_unet_valid_overlap_tile_alignment():
    """Valid U-Net: each output pixel sees only a window of the input, so a tile cut from a
    larger image (offset by a multiple of 2**depth) gives the same logits away from the
    tile's mirrored border. Any misalignment of pads or crops breaks this."""
    model = build_model("unet", 3, width=2, depth=2, padding="valid", bn=False)
    model.eval()
    _, margin = valid_input_size(8, 2)
    big = paddle.randn([1, 3, 80, 80])
    full = model(big).numpy()
    a, s = 8, 56
    tile = model(big[:, :, a:a + s, a:a + s]).numpy()
    inner = slice(margin, s - margin)
    np.testing.assert_allclose(tile[:, :, inner, inner],
                               full[:, :, a + margin:a + s - margin, a + margin:a + s - margin],
                               rtol=1e-4, atol=1e-5)


def test_unet_default_parameter_count():
    # 64 -> 1024 channels, BN, transposed-conv upsampling, 3 in, 2 classes: the paper's ~31.0 M.
    with paddle.LazyGuard():        # shapes only: no time spent initialising 31 M weights
        model = build_model("unet", 2)
    assert count_parameters(model) == 31_037_698
    assert model.padding == "same" and model.depth == 4


def test_psp_module_doubles_channels():
    psp = PSPModule(64)
    psp.eval()
    x = paddle.randn([1, 64, 64, 64])
    y = psp(x)
    assert tuple(y.shape) == (1, 128, 64, 64)
    np.testing.assert_array_equal(y[:, :64].numpy(), x.numpy())       # the input passes through
    glob = y[0, 64:80].numpy()                                          # the 1x1 bin: global context
    assert np.allclose(glob, glob[:, :1, :1], atol=1e-6)
    assert not np.allclose(y[0, 112:128].numpy(), y[0, 112:128, :1, :1].numpy())   # 6x6 bins vary
    assert tuple(psp(paddle.randn([2, 64, 3, 5])).shape) == (2, 128, 3, 5)         # smaller than 6


def test_pspnet_odd_sizes_train_and_eval():
    model = build_model("pspnet", 6, depth=18, width=8)
    model.train()
    out = model(paddle.randn([2, 3, 33, 45]))
    assert isinstance(out, list) and len(out) == 2
    assert all(tuple(o.shape) == (2, 6, 33, 45) for o in out)
    (out[0].mean() + out[1].mean()).backward()
    model.eval()
    with paddle.no_grad():
        assert tuple(model(paddle.randn([1, 3, 17, 23])).shape) == (1, 6, 17, 23)
    plain = build_model("pspnet", 6, depth=18, width=8, psp=False, aux=False)
    plain.train()
    assert tuple(plain(paddle.randn([1, 3, 17, 23])).shape) == (1, 6, 17, 23)


def test_pspnet_default_is_resnet50_full_width():
    with paddle.LazyGuard():
        model = build_model("pspnet", 21)
    assert model.backbone.depth == 50 and model.backbone.output_stride == 8
    assert model.psp.out_channels == 4096 and model.backbone.channels[2] == 1024
    # 46.6 M without the aux head, 49.0 M with it (21 classes)
    assert 48.5e6 < count_parameters(model) < 49.5e6


def _loss_drop(model, fit_tiny, steps=30, lr=3e-3):
    train = SyntheticScenes(4, image_size=32, seed=0)
    x = paddle.to_tensor(np.stack([train[i][0] for i in range(4)]))
    y = paddle.to_tensor(np.stack([train[i][1] for i in range(4)]))
    loss_fn = SegLoss()
    losses = fit_tiny(model, lambda m: loss_fn(m(x), y), steps=steps, lr=lr)
    return np.mean(losses[:3]), np.mean(losses[-3:])


@pytest.mark.parametrize("name,kw", [("unet", dict(width=4, depth=3)),
                                     ("unet", dict(width=4, depth=2, padding="valid")),
                                     ("pspnet", dict(depth=18, width=4))])
def test_models_learn(name, kw, fit_tiny):
    paddle.seed(0)
    first, last = _loss_drop(build_model(name, 7, **kw), fit_tiny)
    assert last < 0.6 * first, (first, last)
