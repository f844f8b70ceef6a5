"""Block diagrams are traced from the models: shapes follow each architecture's strides,
and a diagram whose layer is gone fails loudly instead of drawing a stale picture."""
import matplotlib.pyplot as plt
import paddle
import pytest

from common.course import diagram
from common.models import build_model


@pytest.mark.parametrize("name", sorted(diagram.ARCHITECTURES))
def test_every_diagram_traces_and_draws(name):
    labels, shapes, edges, size = diagram.architecture_shapes(name, size=64)
    assert set(shapes) == set(labels)
    assert all(a in shapes and b in shapes for a, b in edges)
    ax = diagram.draw(labels, shapes, edges, size)
    assert len(ax.patches) == len(shapes) + len(edges)     # one box per block, one arrow per edge
    plt.close("all")


def test_shapes_follow_the_architectures():
    _, s, _, _ = diagram.architecture_shapes("unet", size=64)
    assert [s[k][1] for k in ("e0", "e1", "e2", "e3", "e4")] == [64, 32, 16, 8, 4]
    assert s["d0"] == [s["e0"][0], 64, 64] and s["out"] == [6, 64, 64]
    _, s, _, _ = diagram.architecture_shapes("fcn8s", size=64)
    assert (s["p3"][1], s["p4"][1], s["s32"][1], s["s8"][1]) == (8, 4, 2, 8)
    _, s, _, _ = diagram.architecture_shapes("deeplabv3plus", size=64)
    assert (s["low"][1], s["aspp"][1], s["fuse"][1]) == (16, 4, 16)       # stride 4, 16, 4
    _, s, _, _ = diagram.architecture_shapes("glore_unit", size=64)
    mid = s["x"][0]
    assert s["v"] == [mid // 4, mid // 2] == s["z"] and s["y"] == s["x"]    # nodes x states


def test_a_missing_layer_is_named():
    model = build_model("unet", 3, width=4)
    with pytest.raises(KeyError, match="downs.9"):
        diagram.trace(model, {"e": "downs.9"}, paddle.randn([1, 3, 32, 32]))


def test_a_block_that_never_runs_is_named():
    model = build_model("pspnet", 3, depth=18, width=4)
    with pytest.raises(KeyError, match="never ran.*aux"):
        diagram.trace(model, {"aux": "aux_head"}, paddle.randn([1, 3, 32, 32]))   # eval: no aux


def test_drawing_leaves_the_random_stream_alone():
    """A diagram cell between seeding and training must not change the training run."""
    paddle.seed(123)
    expected = paddle.randn([4]).numpy()
    paddle.seed(123)
    diagram.architecture_shapes("unet", size=32)
    assert (paddle.randn([4]).numpy() == expected).all()
