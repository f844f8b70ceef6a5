"""DeepLab V1/V2/V3/V3+: atrous conv, ASPP, shapes on odd sizes, output strides, loading
ImageNet weights, the comparison table, and learning on a tiny synthetic set."""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from common.losses import SegLoss
from common.models import build_model
from common.models.deeplab import (ASPPConcat, ASPPSum, DEEPLAB_MODELS, NOTES_COLUMN, TABLE_COLUMNS, deeplab_table,
                                   describe, notes_vs_papers)
from common.course.widgets import atrous_demo, atrous_footprint

# CPU-tiny configurations of the four versions (same keys as the notebooks use).
TINY = dict(deeplabv1=dict(width=4),
            deeplabv2=dict(depth=18, width=4),
            deeplabv3=dict(depth=18, width=4),
            deeplabv3plus=dict(width=4, middle_blocks=1))
STRIDES = dict(deeplabv1=[8], deeplabv2=[8, 16], deeplabv3=[8, 16], deeplabv3plus=[8, 16])


def _dilate(w, rate):
    """Zero insertion written independently of common.ops."""
    k = w.shape[-1]
    out = np.zeros(w.shape[:2] + ((k - 1) * rate + 1,) * 2, w.dtype)
    out[..., ::rate, ::rate] = w
    return out


@pytest.mark.parametrize("rate,h,w", [(1, 9, 9), (2, 11, 13), (3, 15, 10), (5, 21, 17)])
def test_dilated_kernel_equals_dilation(rate, h, w):
    x = np.random.randn(2, 3, h, w).astype("float32")
    k = np.random.randn(4, 3, 3, 3).astype("float32")
    ref = F.conv2d(paddle.to_tensor(x), paddle.to_tensor(k), padding=rate, dilation=rate).numpy()
    by_hand = F.conv2d(paddle.to_tensor(x), paddle.to_tensor(_dilate(k, rate)), padding=rate).numpy()
    assert ref.shape == (2, 4, h, w)               # padding = rate keeps the size (3x3 kernel)
    np.testing.assert_allclose(by_hand, ref, atol=1e-4)
    ops = pytest.importorskip("common.ops")
    if not hasattr(ops, "atrous_conv2d"):
        pytest.skip("common.ops.atrous_conv2d not written yet")
    np.testing.assert_allclose(ops.dilate_kernel(k, rate), _dilate(k, rate))
    np.testing.assert_allclose(ops.atrous_conv2d(x, k, rate, padding=rate), ref, atol=1e-4)


def test_atrous_footprint_gridding_and_multigrid():
    one = atrous_footprint(2)
    assert one.sum() == 9 and (one > 0).sum() == 9           # 9 taps spread over 5x5
    same = atrous_demo(2, layers=3, show=False)              # rates 2, 2, 2
    mg = atrous_demo(1, layers=3, multi_grid=True, show=False)  # rates 1, 2, 4
    assert (same["rf"], mg["rf"]) == (13, 15)
    assert same["covered_fraction"] < 0.3                    # only even offsets: holes
    assert mg["covered_fraction"] == 1.0                     # multi-grid fills every pixel
    with pytest.raises(ValueError, match="rates"):
        atrous_footprint([0])


def test_aspp_sum_vs_concat_shapes():
    x = paddle.randn([2, 16, 9, 11])
    s = ASPPSum(16, 5, rates=(1, 2, 3, 4))
    assert s(x).shape == [2, 5, 9, 11]                       # summed: the class count
    c = ASPPConcat(16, 8, rates=(1, 2, 3))
    c.eval()
    assert c(x).shape == [2, 8, 9, 11]                       # projected back to out_ch
    assert c.project[0]._in_channels == 5 * 8                # 1x1 + 3 atrous + image pooling
    sep = ASPPConcat(16, 8, rates=(1, 2, 3), separable=True)
    assert sum(p.size for p in sep.parameters()) < sum(p.size for p in c.parameters())


@pytest.mark.parametrize("name", DEEPLAB_MODELS)
def test_forward_backward_odd_sizes(name):
    for os_ in STRIDES[name]:
        kw = dict(TINY[name], **({} if name == "deeplabv1" else {"output_stride": os_}))
        m = build_model(name, 5, **kw)
        assert m.output_stride == os_
        # the backbone's deepest feature really is at 1/os (ceil for odd sizes)
        m.eval()
        feat = m.backbone(paddle.randn([1, 3, 64, 64]))[-1]
        assert feat.shape[-1] == 64 // os_, (name, os_, feat.shape)
        m.train()
        x = paddle.randn([2, 3, 37, 29])
        y = m(x)
        y = y[0] if isinstance(y, list) else y      # V2 trains on [fused, per-scale scores]
        assert y.shape == [2, 5, 37, 29]
        y.mean().backward()
        first = m.parameters()[0]
        assert first.grad is not None and float(first.grad.abs().sum()) > 0
        m.eval()
        assert m(paddle.randn([1, 3, 31, 45])).shape == [1, 5, 31, 45]


def test_resnet_imagenet_weights_load(tmp_path):
    from paddle.vision.models import resnet18

    ref = resnet18(pretrained=False)
    path = str(tmp_path / "resnet18.pdparams")
    paddle.save(ref.state_dict(), path)
    m = build_model("deeplabv3", 4, depth=18, width=64, pretrained=path)
    np.testing.assert_array_equal(m.backbone.layer3[1].conv2.weight.numpy(),
                                  ref.layer3[1].conv2.weight.numpy())
    with pytest.raises(FileNotFoundError):
        build_model("deeplabv2", 4, depth=18, width=8, pretrained=str(tmp_path / "missing.pdparams"))


def test_v1_backbone_layout():
    m = build_model("deeplabv1", 5, width=4)
    assert m.backbone.strides == [2, 4, 8, 8, 8]
    assert {l._dilation[0] for l in m.backbone.stage5 if hasattr(l, "_dilation")} == {2}
    assert m.fc[0]._dilation[0] == 12 and m.fc[0]._kernel_size[0] == 3                 # LargeFOV
    assert [b[0]._stride[0] for b in m.msc] == [8, 4, 2, 1, 1]
    # the paper's MSc: 128 (= 2 x width) features per branch, concatenated to FC7's 1024
    assert [b[3]._out_channels for b in m.msc] == [8] * 5
    assert m.classifier._in_channels == 16 * 4 + 5 * 8


def test_v1_msc_features_are_concatenated_before_fc8():
    """FC8 is one 1x1 conv over [FC7, MSc features]: with the MSc columns of its weight set
    to zero the output is FC8 on FC7 alone, and with FC7's columns zeroed it depends on the
    MSc branches only (a model that summed per-branch class scores would fail both)."""
    m = build_model("deeplabv1", 3, width=4)
    m.eval()
    x = paddle.randn([1, 3, 40, 40])
    w, b = m.classifier.weight.numpy(), m.classifier.bias
    c7 = m.fc[3]._out_channels
    with paddle.no_grad():
        fc7 = m.fc(m.backbone(x)[-1])
        only_fc7 = F.interpolate(F.conv2d(fc7, paddle.to_tensor(w[:, :c7]), b), size=[40, 40],
                                 mode="bilinear", align_corners=False)
        w_cut = w.copy()
        w_cut[:, c7:] = 0
        m.classifier.weight.set_value(w_cut)
        np.testing.assert_allclose(m(x).numpy(), only_fc7.numpy(), rtol=1e-5, atol=1e-6)
        w_cut = w.copy()
        w_cut[:, :c7] = 0
        m.classifier.weight.set_value(w_cut)
        a = m(x).numpy()
        for layer in m.msc[0]:            # the input's branch sees another image: output changes
            if isinstance(layer, paddle.nn.Conv2D):
                layer.weight.set_value(layer.weight.numpy() * 2)
        assert np.abs(m(x).numpy() - a).max() > 1e-6


def test_v2_msc_max_fusion():
    """Eval output = max over scales 1, 0.75, 0.5 of the same network's scores (each resized
    to the scale-1 score map), then upsampled; training returns [fused, s1, s0.75, s0.5]."""
    m = build_model("deeplabv2", 4, depth=18, width=4)
    assert m.msc_scales == (1.0, 0.75, 0.5)
    m.eval()
    x = paddle.randn([2, 3, 45, 38])
    with paddle.no_grad():
        scores = []
        for s in (1.0, 0.75, 0.5):
            xs = F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False) if s < 1 else x
            scores.append(m.aspp(m.backbone(xs)[-1]))
        size = scores[0].shape[-2:]
        up = [F.interpolate(y, size=size, mode="bilinear", align_corners=False) if i else y
              for i, y in enumerate(scores)]
        fused = np.maximum.reduce([u.numpy() for u in up])
        ref = F.interpolate(paddle.to_tensor(fused), size=[45, 38], mode="bilinear", align_corners=False)
        np.testing.assert_allclose(m(x).numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)
        assert not np.allclose(fused, up[0].numpy())       # the smaller scales do win somewhere
    m.train()
    outs = m(x)
    assert isinstance(outs, list) and len(outs) == 4 and all(o.shape == [2, 4, 45, 38] for o in outs)
    single = build_model("deeplabv2", 4, depth=18, width=4, msc_scales=None)
    assert single.msc_scales == (1.0,) and single(x).shape == [2, 4, 45, 38]
    with pytest.raises(ValueError, match="msc_scales"):
        build_model("deeplabv2", 4, depth=18, width=4, msc_scales=(0.5, 1.0))


def test_table_from_code():
    small = {n: TINY[n] for n in DEEPLAB_MODELS}
    rows = deeplab_table(num_classes=5, kwargs=small)
    assert all(tuple(r) == TABLE_COLUMNS + (NOTES_COLUMN,) for r in rows)
    col = lambda c: [r[c] for r in rows]                                   # noqa: E731
    # known facts of the four papers, as the modules must show them
    assert col("network") == ["DeepLab V1", "DeepLab V2", "DeepLab V3", "DeepLab V3+"]
    assert col("backbone") == ["VGG-16", "ResNet-18", "ResNet-18 multi-grid (1, 2)", "Xception"]
    assert col("backbone dilations") == ["2", "2, 4", "2, 4", "2"]
    assert col("head dilations") == ["12", "6, 12, 18, 24", "6, 12, 18", "6, 12, 18"]
    assert col("ASPP fusion") == ["none", "sum of 4 branches", "concat of 5 branches + 1x1",
                                  "concat of 5 branches + 1x1, separable"]
    assert col("image pooling") == ["no", "no", "yes", "yes"]
    assert col("decoder") == ["no", "no", "no", "yes (stride 4)"]
    assert col("MSc") == ["5 branches, concat before FC8", "no", "no", "no"]
    assert col("input scales") == ["1", "1, 0.75, 0.5", "1", "1"]
    assert col("CRF step") == ["dense CRF (5 mean-field iters)"] * 2 + ["no"] * 2
    assert col("output stride") == [8, 8, 16, 16]
    assert all(0 < p < 1 for p in col("params (M)"))
    v3 = build_model("deeplabv3", 5, **TINY["deeplabv3"])
    assert v3.aspp.rates == (6, 12, 18)
    assert build_model("deeplabv3", 5, **TINY["deeplabv3"], output_stride=8).aspp.rates == (12, 24, 36)


def test_table_reads_the_modules():
    """The rows change when the modules change (no hand-typed strings): other rates, output
    stride, no image pooling, a ResNet V3+, no MSc heads, no multi-grid."""
    v3 = build_model("deeplabv3", 5, **TINY["deeplabv3"], output_stride=8)
    row = describe(v3)
    assert row["output stride"] == 8 and row["head dilations"] == "12, 24, 36"
    assert row["backbone dilations"] == "2, 4, 8"           # layer3 at 2, multi-grid 4 x (1, 2)
    v3.aspp = ASPPConcat(v3.backbone.channels[-1], v3.classifier._in_channels, (3, 5), image_pooling=False)
    row = describe(v3)
    assert row["image pooling"] == "no" and row["head dilations"] == "3, 5"
    assert row["ASPP fusion"] == "concat of 3 branches + 1x1"
    plain = build_model("deeplabv3", 5, **TINY["deeplabv3"], multi_grid=(1, 1, 1))
    assert describe(plain)["backbone"] == "ResNet-18"
    row = describe(build_model("deeplabv3plus", 5, backbone="resnet", depth=18, width=4))
    assert row["backbone"] == "ResNet-18" and row["decoder"] == "yes (stride 4)"
    assert describe(build_model("deeplabv1", 5, width=4, msc=False, fc6_rate=4))["MSc"] == "no"
    v2 = build_model("deeplabv2", 5, depth=18, width=4, msc_scales=(1, 0.5))
    assert describe(v2)["input scales"] == "1, 0.5"
    v2.postprocess = None
    assert describe(v2)["CRF step"] == "no"
    assert describe(build_model("deeplabv1", 5, width=4, fc6_rate=4))["head dilations"] == "4"


@pytest.mark.parametrize("name", ["deeplabv2", "deeplabv3plus"])
def test_learns_tiny_set(name, fit_tiny):
    from common.data import make_scenes
    from common.data.transforms import to_tensor_arrays

    images, labels = make_scenes(4, 33, seed=1)
    xs = np.stack([to_tensor_arrays(i, l)[0] for i, l in zip(images, labels)])
    x, y = paddle.to_tensor(xs), paddle.to_tensor(np.stack(labels).astype("int64"))
    m = build_model(name, 7, **TINY[name], output_stride=8)
    loss = SegLoss(aux_weight=1.0)           # V2's MSC: a loss on the fused map and on each scale
    losses = fit_tiny(m, lambda m: loss(m(x), y), steps=30, lr=0.01)
    assert np.mean(losses[-3:]) < 0.6 * np.mean(losses[:3]), losses



def test_notes_column_sets_the_syllabus_beside_the_papers():
    """The syllabus's multi-scale cells ("Training", "Inference") beside what the models read
    from their modules and what the papers do, and a flag where a model contradicts a notes' cell."""
    rows = {r["network"]: r[NOTES_COLUMN] for r in deeplab_table(num_classes=5, kwargs=TINY)}
    assert rows["DeepLab V1"].startswith('MultiScale "Training": MSc (5 branches, concat before FC8) in training')
    assert "no rescaled images (V1 Sec. 4.3)" in rows["DeepLab V1"]
    assert rows["DeepLab V2"].startswith('MultiScale "Training": inputs at 1, 0.75, 0.5, max-fused, in training')
    assert "0.5-1.5 in training (V2 Sec. 3.2, 4.1)" in rows["DeepLab V2"]
    for v in ("DeepLab V3", "DeepLab V3+"):
        assert rows[v].startswith('MultiScale "Inference": random rescaling')
        assert "scales + flip at inference" in rows[v]
    assert all("backbone" not in t and "CRF" not in t for t in rows.values())    # the notes agree there
    # the column follows the modules: other scales, no CRF step, no multi-grid, a ResNet V3+
    v2 = build_model("deeplabv2", 5, depth=18, width=4, msc_scales=(1, 0.5))
    v2.postprocess = None
    text = notes_vs_papers(describe(v2))
    assert "inputs at 1, 0.5" in text and text.endswith('CRF "Yes": model no')
    plain = describe(build_model("deeplabv3", 5, **TINY["deeplabv3"], multi_grid=(1, 1, 1)))
    assert notes_vs_papers(plain).endswith('backbone "MG ResNet": model ResNet-18')
    v3p = describe(build_model("deeplabv3plus", 5, backbone="resnet", depth=18, width=4))
    assert notes_vs_papers(v3p).endswith('backbone "Xception": model ResNet-18')
