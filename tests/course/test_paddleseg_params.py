"""Like for like with PaddleSeg 2.8: every pair of ``common.course.bench.paddleseg.PADDLESEG_PAIRS`` (our model
built by named options in PaddleSeg's configuration) has PaddleSeg's parameter count (7
classes), up to differences this test accounts for exactly, so `make bench-paddleseg`
compares equal work. PaddleSeg is not needed here: its counts were measured once with

    .venv/bin/python -m pip install -q --no-deps --target .bench-paddleseg paddleseg==2.8.0 \\
        scikit-learn prettytable filelock joblib threadpoolctl wcwidth cloudpickle narwhals
    PYTHONPATH=.bench-paddleseg .venv/bin/python -c "
    import common, paddle.nn as nn; from common.course.bench.paddleseg import PADDLESEG_PAIRS, build_paddleseg
    def biases(m): return sum(int(l.bias.size) for l in m.sublayers()
                              if isinstance(l, (nn.Conv1D, nn.Conv2D)) and l.bias is not None)
    for name, kw, ctor in PADDLESEG_PAIRS:
        m = build_paddleseg(ctor, 7)
        print(name, sum(int(p.size) for p in m.parameters()),                   # PS_COUNTS
              biases(m) - (biases(m.backbone) if hasattr(m, 'backbone') else 0))" # PS_BIASES
    and GINet's node-level parameters (PS_GINET_NODES) as the parameters of
    m.head.gloru.graph, m.head.fc1, m.head.fc2 and m.head.inp less biases(m.head.gloru.graph).

Paddle counts BatchNorm's running mean and variance among the parameters, on both sides.
"""
import paddle
import paddle.nn as nn
import pytest

from common.course.bench.paddleseg import PADDLESEG_PAIRS
from common.models import build_model

# name: PaddleSeg 2.8's parameter count, and the conv biases outside its backbone
PS_COUNTS = dict(unet=13_407_239, pspnet=67_908_462, deeplabv3=39_121_767,
                 deeplabv3plus=26_791_159, glore=27_183_726, ginet=36_103_917)
PS_BIASES = dict(unet=3_975, pspnet=3_342, deeplabv3=1_287, deeplabv3plus=8_551, glore=526,
                 ginet=1_213)
# ResNet50_vd(output_stride=8) alone: 23,580,512. Its deep stem (three 3x3 convs, 3-32-32-64,
# with BN) has 19,360 more parameters than ResNet-50's 7x7 stem; the rest of the backbone
# (the vd avg-pool shortcuts have no parameters) is equal.
PS_RESNET50_VD = 23_580_512
DEEP_STEM = 19_360
# GINet's graph unit differs in node-level internals only (no per-pixel work; its per-pixel
# convs Z, W, W_o and BN are equal): PaddleSeg's 300-d word-vector input (7 x 300), two
# Linear+BN layers to 256-d class nodes, attention by Conv1D query/key/value projections
# and two gates; ours 16-d word vectors, a two-layer MLP, two Linear projections and a
# class-node score. PaddleSeg's node-level parameters (conv biases excluded):
PS_GINET_NODES = 410_064


def _built(name, **kwargs):
    """``build_model(name, 7, ...)`` with its parameters' shapes only: counting needs no initial
    values, and drawing them (Paddle's gaussian on one thread) is most of a full-size build."""
    with paddle.LazyGuard():
        return build_model(name, 7, **kwargs)


def _count(layer):
    return sum(int(p.size) for p in layer.parameters())


def _conv_biases(layer):
    return sum(int(sub.bias.size) for sub in layer.sublayers(include_self=True)
               if isinstance(sub, (nn.Conv1D, nn.Conv2D)) and sub.bias is not None)


@pytest.mark.parametrize("name,kwargs", [(n, kw) for n, kw, _ in PADDLESEG_PAIRS],
                         ids=[n for n, _, _ in PADDLESEG_PAIRS])
def test_paddleseg_configuration_has_paddleseg_parameter_count(name, kwargs):
    model = _built(name, **kwargs)
    backbone = getattr(model, "backbone", None)
    stem = 0
    ours_biases = _conv_biases(model)
    if backbone is not None:
        stem = PS_RESNET50_VD - _count(backbone)
        assert stem == DEEP_STEM, "the backbone differs from ResNet50_vd by more than its stem"
        ours_biases -= _conv_biases(backbone)
    # conv biases before BN: PaddleSeg keeps them, ours drop them as redundant
    accounted = _count(model) + stem + PS_BIASES[name] - ours_biases
    if name == "ginet":
        unit = model.unit
        ours_nodes = _count(unit) - sum(_count(p) for p in (unit.proj, unit.reduce, unit.out, unit.bn))
        accounted += PS_GINET_NODES - ours_nodes
    assert accounted == PS_COUNTS[name]


def test_course_defaults_stay_the_papers():
    assert _count(_built("unet")) == 31_049_799        # 1024-channel bottom
    assert _count(_built("pspnet")) == 49_005_774      # 512-channel bottleneck


def test_unet_paddleseg_layout_keeps_any_input_size():
    model = build_model("unet", 7, width=4, paddleseg=True)
    model.eval()
    assert model(paddle.randn([1, 3, 37, 50])).shape == [1, 7, 37, 50]


def test_pspnet_head_channels_sets_only_the_bottleneck():
    model = build_model("pspnet", 7, depth=18, width=8, head_channels=24)
    assert model.head[0][0].weight.shape[0] == 24
    assert model.aux_head[0][0].weight.shape[0] == 32          # 256 * 8 // 64, as by default
