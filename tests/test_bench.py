"""`common.course.bench`: the multiply-accumulate counter against counts worked out by hand, the
training presets of the instance/panoptic models, and the PaddleSeg aux-head switch."""
import common  # noqa: F401  (threads before Paddle)
import paddle
import paddle.nn as nn
import pytest

from common.course.bench import BENCH_MODELS, count_macs, paddleseg_aux, training_loss


class _Net(nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 8, 3, padding=1)                 # 8 x 10 x 10 outputs x 27
        self.group = nn.Conv2D(8, 8, 3, padding=1, groups=4)      # 8 x 10 x 10 outputs x 2*9
        self.up = nn.Conv2DTranspose(8, 4, 2, stride=2)           # 8 x 10 x 10 inputs x 4*2*2
        self.fc = nn.Linear(20, 6)                                # 4 x 20 rows x 6 x 20

    def forward(self, x):
        y = self.up(self.group(self.conv(x)))                     # (1, 4, 20, 20)
        return self.fc(y[0])                                      # (4, 20, 6)


def test_count_macs_by_hand():
    macs = count_macs(_Net(), paddle.randn([1, 3, 10, 10]))
    assert macs == 800 * 27 + 800 * 18 + 800 * 16 + 4 * 20 * 6 * 20


PRESET_MODELS = ("mask_rcnn", "upsnet", "solo", "panoptic_deeplab")


@pytest.mark.parametrize("name", PRESET_MODELS)
def test_training_presets_live_in_bench(name):
    """The instance/panoptic presets live in the bench: no model class carries a method made
    for it, and each preset gives a finite scalar loss whose gradient reaches the backbone."""
    import numpy as np

    from common.models import build_model
    from common.models.mask_rcnn import MaskRCNN
    from common.models.panoptic_deeplab import PanopticDeepLab
    from common.models.solo import SOLO
    from common.models.upsnet import UPSNet

    for cls in (MaskRCNN, UPSNet, SOLO, PanopticDeepLab):
        assert not hasattr(cls, "bench_loss"), cls
    kwargs = dict(BENCH_MODELS)[name]
    paddle.seed(0)
    model = build_model(name, 7, **kwargs)
    model.train()
    loss_of = training_loss(model, None)
    x = paddle.randn([2, 3, 64, 64])
    loss = loss_of(x)
    assert loss.size == 1 and np.isfinite(float(loss))
    loss.backward()
    assert model.backbone.conv1.weight.grad is not None


def test_paddleseg_aux_switches_only_paddleseg_flags():
    class Head:
        enable_auxiliary_loss = True

    class PSP:                     # PaddleSeg's PSPNet / GloRe keep the flag on their head
        head = Head()

    class GI:                      # PaddleSeg's GINet keeps it on the model
        aux = True

    class Ours:                    # ours: ``aux`` is a Layer (or None), never a flag
        aux = nn.Identity()
    psp, gi, ours = PSP(), GI(), Ours()
    for m in (psp, gi, ours):
        paddleseg_aux(m, False)
    assert psp.head.enable_auxiliary_loss is False and gi.aux is False
    assert isinstance(ours.aux, nn.Identity)
    paddleseg_aux(gi, True)
    assert gi.aux is True
