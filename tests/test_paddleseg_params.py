"""Like for like with PaddleSeg 2.8: the named options that build PaddleSeg's configuration
give PaddleSeg's parameter count (7 classes), so `make bench-paddleseg` compares equal work.

PaddleSeg's counts were measured once, outside the venv:
    .venv/bin/python -m pip install --no-deps --target /tmp/psg paddleseg==2.8.0 \
        scikit-learn prettytable filelock joblib threadpoolctl wcwidth cloudpickle narwhals
    PYTHONPATH=/tmp/psg .venv/bin/python -c "import paddleseg.models as PS; ..."
    sum(p.size for p in model.parameters()) of
      PS.UNet(7)                                                     13,407,239
      PS.GloRe(7, ResNet50_vd(output_stride=8), backbone_indices=(2, 3))  27,183,726
      ResNet50_vd(output_stride=8) alone                             23,580,512
(Paddle counts BatchNorm's running mean and variance among the parameters, on both sides.)
"""
import common  # noqa: F401  (threads before Paddle)
from common.models import build_model

PS_UNET = 13_407_239
PS_GLORE = 27_183_726
PS_RESNET50_VD = 23_580_512


def _count(layer):
    return sum(int(p.size) for p in layer.parameters())


def test_unet_paddleseg_layout_has_paddleseg_parameter_count():
    assert _count(build_model("unet", 7, paddleseg=True)) == PS_UNET
    assert _count(build_model("unet", 7)) == 31_049_799       # the paper's layout stays default


def test_unet_paddleseg_layout_keeps_any_input_size():
    import paddle

    model = build_model("unet", 7, width=4, paddleseg=True)
    model.eval()
    assert model(paddle.randn([1, 3, 37, 50])).shape == [1, 7, 37, 50]


def test_glore_paddleseg_head_has_paddleseg_parameter_count():
    model = build_model("glore", 7, depth=50, kernel=1, head_conv=False,
                        num_states=128, num_nodes=64)
    # Left different on purpose, and accounted for exactly: ResNet-vd's deep stem (three 3x3
    # convs instead of one 7x7), and two conv biases PaddleSeg keeps that ours drop as
    # redundant (the GCN's node conv: 64 nodes; the aux conv before BN: 256 channels).
    stem = PS_RESNET50_VD - _count(model.backbone)
    assert stem == 19_360
    assert _count(model) + stem + 64 + 256 == PS_GLORE
