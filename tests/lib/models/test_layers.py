"""Shared layers (common/models/layers.py): GroupNorm's group rule and the Conv-GN-ReLU block,
and the models built on them at channel counts the old per-model rules could not handle."""
import numpy as np
import paddle
import pytest

from common.data import VARIANTS
from common.models import build_model
from common.models.layers import ConvGNReLU, gn_groups


def test_gn_groups_always_divides():
    for ch in range(1, 513):
        g = gn_groups(ch)
        assert 1 <= g <= 32 and ch % g == 0, ch
        assert g == 1 or ch // g >= 4, ch
        # the most such groups: no larger admissible divisor
        assert not any(ch % h == 0 and ch // h >= 4 for h in range(g + 1, 33)), ch
    # where the old rules worked they agree: min(32, ch // 4) (UPSNet), max(1, ...) (SOLO)
    assert [gn_groups(c) for c in (8, 16, 64, 128, 256, 6)] == [2, 4, 16, 32, 32, 1]
    # where they did not: 0 groups (UPSNet at 2 channels), 32 not dividing 200 or 132
    assert [gn_groups(c) for c in (2, 3, 200, 132)] == [1, 1, 25, 22]
    with pytest.raises(ValueError, match="channels"):
        gn_groups(0)


def test_conv_gn_relu_any_size():
    block = ConvGNReLU(3, 6, kernel_size=3, dilation=2)
    assert block[1]._num_groups == 1
    y = block(paddle.randn([1, 3, 13, 8]))
    assert tuple(y.shape) == (1, 6, 13, 8) and float(y.min()) >= 0


@pytest.mark.parametrize("deformable", [False, True])
@pytest.mark.parametrize("sem_channels", [2, 200])
def test_upsnet_builds_with_any_semantic_width(deformable, sem_channels):
    """min(32, c // 4) gave 0 groups for 2 channels and 32 (not a divisor) for 200."""
    scenes = VARIANTS["scenes"]
    model = build_model("upsnet", 7, thing_ids=scenes.thing_ids, stuff_ids=scenes.stuff_ids,
                        preset="tiny", sem_channels=sem_channels, deformable=deformable)
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([1, 3, 41, 57]))
    assert out[0]["panoptic"].shape == (41, 57)


def test_solo_builds_with_any_head_width():
    """max(1, min(32, c // 4)) gave 32 groups, not a divisor, for 132 channels."""
    model = build_model("solo", 3, preset="tiny", image_size=48, head_channels=132)
    x = paddle.randn([1, 3, 45, 53])
    m = np.zeros((1, 45, 53), bool)
    m[0, 10:30, 12:33] = True
    losses = model(x, [dict(masks=m, labels=np.array([1]))])
    assert np.isfinite(float(losses["loss"]))
    model.eval()
    assert len(model(x)) == 1


def test_one_segmentation_head_for_pspnet_and_the_context_networks():
    """PSPNet's head and aux head and the Day 5 networks' head and aux are one SegHead class."""
    from common.models import build_model
    from common.models.layers import SegHead

    psp = build_model("pspnet", 5, depth=18, width=4)
    glore = build_model("glore", 5, depth=18, width=4, mid=16)
    bare = build_model("glore", 5, depth=18, width=4, mid=16, head_conv=False)
    for head in (psp.head, psp.aux_head, glore.head, glore.aux, bare.head):
        assert type(head) is SegHead
    assert [type(m).__name__ for m in bare.head] == ["Dropout", "Conv2D"]          # PaddleSeg's layout
    assert [type(m).__name__ for m in glore.head] == ["ConvBNReLU", "Dropout", "Conv2D"]
