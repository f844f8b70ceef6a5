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


def test_deeplab_v1_v2_diagrams_follow_the_papers():
    """V1: output stride 8 from pool3 on, five MSc branches at stride 8 concatenated to FC7;
    V2: four ASPP branches of class scores summed; MSC: one backbone run per scale (#k)."""
    _, s, edges, _ = diagram.architecture_shapes("deeplabv1", size=64)
    assert [s[k][1] for k in ("p1", "p2", "p3", "p4", "p5", "fc7")] == [32, 16, 8, 8, 8, 8]
    assert all(s[f"m{i}"][1:] == [8, 8] for i in range(5))
    assert s["cat"][0] == s["fc7"][0] + sum(s[f"m{i}"][0] for i in range(5))
    assert {a for a, b in edges if b == "cat"} == {"fc7", "m0", "m1", "m2", "m3", "m4"}
    _, s, _, _ = diagram.architecture_shapes("deeplabv2", size=64)
    assert s["c5"][1] == 8 and all(s[k] == s["sum"] == [6, 8, 8] for k in ("a6", "a12", "a18", "a24"))
    _, s, _, _ = diagram.architecture_shapes("deeplabv2_msc", size=64)
    assert [s[k][1] for k in ("x1", "x75", "x50")] == [64, 48, 32]        # the three scales, one network
    assert [s[k][1] for k in ("c1", "c75", "c50")] == [8, 6, 4] and s["out"] == [6, 64, 64]


def test_a_call_that_never_happens_is_named():
    model = build_model("deeplabv2", 3, depth=18, width=4)
    with pytest.raises(KeyError, match="never ran.*s3"):
        diagram.trace(model, {"s3": "aspp#3"}, paddle.randn([1, 3, 32, 32]))    # three scales: calls 0-2


def test_blocks_less_than_a_row_apart_are_spread():
    """Scales 1, 0.75 and 0.5 sit 0.4 and 1 level apart: in one column they keep a row between them."""
    shapes = {"a": [3, 64, 64], "b": [3, 48, 48], "c": [3, 32, 32]}
    pos = diagram._layout(shapes, [], 64)
    ys = sorted((p[1] for p in pos.values()), reverse=True)
    assert all(hi - lo >= 1.3 - 1e-9 for hi, lo in zip(ys, ys[1:]))


def test_day5_day6_diagrams_follow_the_models():
    """GCU's four graphs, GINet's two graphs, SOLO's grid and UPSNet's two heads, as built."""
    _, s, _, _ = diagram.architecture_shapes("gcu_block", size=64)
    mid = s["x"][0]
    assert [s[f"z{v}"][0] for v in (2, 4, 8, 32)] == [2, 4, 8, 32]           # nodes x features
    assert s["cat"] == [mid + sum(s[f"r{v}"][0] for v in (2, 4, 8, 32))] + s["x"][1:]
    _, s, _, _ = diagram.architecture_shapes("gi_unit", size=64)
    classes, visual = s["s"][0], s["z"][0]
    assert s["pin"] == s["po"] == [visual, s["xw"][0]] and s["so"] == [classes, s["xw"][0]]
    assert s["sc"] == [classes, 1] and s["y"] == s["x"]
    _, s, _, _ = diagram.architecture_shapes("solo", size=96)
    assert s["cate"] == [3, 12, 12] and s["mx"][0] == s["my"][0] == 12 and s["coord"][0] == s["p3"][0] + 2
    _, s, _, _ = diagram.architecture_shapes("upsnet", size=64)
    assert s["sem"][1:] == [64, 64] and s["mroi"][1:] == [7, 7] and s["p2"][1] == 16
