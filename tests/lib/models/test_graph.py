"""Day 5 graph units (GCU, GloRe, GINet) and the models built on them."""
import numpy as np
import paddle
import pytest

from common.data import make_scenes, to_tensor_arrays
from common.data.word_vectors import WORD_VECTORS, load_word_vectors, make_word_vectors
from common.losses import ContextLoss, SegLoss
from common.models import build_model
from common.models.graph import GCUBlock, GIUnit, GloReUnit, GraphConvUnit, NodeGCN

CONTEXT = ("sky", "grass", "water", "road", "boat", "car")


def _x(n=2, c=6, h=7, w=9, seed=0):
    return paddle.to_tensor(np.random.default_rng(seed).standard_normal((n, c, h, w)).astype("float32"))


def test_gcu_shapes_and_formulas():
    x = _x()
    gcu = GraphConvUnit(6, num_nodes=3, out_channels=5)
    xf = x.reshape([2, 6, -1]).transpose([0, 2, 1])                 # (N, L, d)
    q = gcu.assign(xf)
    assert tuple(q.shape) == (2, 63, 3)
    np.testing.assert_allclose(q.sum(-1).numpy(), 1, rtol=1e-5)
    # the matmul expansion equals the direct Gaussian soft assignment
    xn, w, s = xf.numpy(), gcu.anchors.numpy(), np.exp(gcu.log_sigma.numpy())
    d = (((xn[..., None] - w) / s) ** 2).sum(2)                     # (N, L, V)
    e = np.exp(-0.5 * (d - d.min(-1, keepdims=True)))
    np.testing.assert_allclose(q.numpy(), e / e.sum(-1, keepdims=True), atol=1e-5)
    z = gcu.project(xf, q)
    assert tuple(z.shape) == (2, 3, 6)
    qn = q.numpy()
    zn = np.einsum("nlv,nlvd->nvd", qn, (xn[:, :, None] - w.T) / s.T) / qn.sum(1)[..., None]
    zn /= np.linalg.norm(zn, axis=-1, keepdims=True)
    np.testing.assert_allclose(z.numpy(), zn, atol=1e-4)
    y, q2 = gcu(x, return_q=True)
    assert tuple(y.shape) == (2, 5, 7, 9) and tuple(gcu.last_q.shape) == (2, 3, 7, 9)
    block = GCUBlock(6, nodes=(2, 4), out_channels=3)
    assert tuple(block(x).shape) == (2, 6 + 3 + 3, 7, 9) and block.out_channels == 12
    assert [tuple(a.shape) for a in block.assignments] == [(2, 2, 7, 9), (2, 4, 7, 9)]


def test_node_gcn_is_i_minus_a_relu_w():
    gcn = NodeGCN(num_nodes=4, num_states=5)
    v = paddle.randn([2, 4, 5])
    a = gcn.node_conv.weight.numpy()[:, :, 0]
    w = gcn.state_conv.weight.numpy()[:, :, 0]
    ref = np.maximum((np.eye(4) - a) @ v.numpy(), 0) @ w.T
    np.testing.assert_allclose(gcn(v).numpy(), ref, atol=1e-5)


def test_glore_shapes_and_identity_at_init():
    x = _x(c=8)
    unit = GloReUnit(8, num_states=6, num_nodes=3)
    for mode in (unit.train, unit.eval):
        mode()
        np.testing.assert_array_equal(unit(x).numpy(), x.numpy())   # zero-gamma BN blocks the residual
    # the residual branch is live: with gamma 1 the output moves, shape kept on odd sizes
    unit.bn.weight.set_value(paddle.ones([8]))
    unit.train()
    y = unit(x)
    assert tuple(y.shape) == (2, 8, 7, 9) and float((y - x).abs().max()) > 1e-3
    states = unit.state(x).reshape([2, 6, -1]).numpy()
    b = unit.proj(x).reshape([2, 3, -1]).numpy()
    v = b @ states.transpose(0, 2, 1) / 63
    assert v.shape == (2, 3, 6)


def test_word_vectors_reproducible_and_meaningful():
    data = np.load(WORD_VECTORS)
    words, vec = make_word_vectors(list(data["corpus"]), int(data["dim"]), int(data["window"]))
    assert words == data["words"].tolist()
    np.testing.assert_allclose(vec, data["vectors"], atol=1e-5)
    e = {c: v for c, v in zip(CONTEXT, load_word_vectors(CONTEXT))}
    assert all(np.linalg.norm(v) > 0.99 for v in e.values())
    assert e["boat"] @ e["water"] > e["boat"] @ e["road"]
    assert e["car"] @ e["road"] > e["car"] @ e["water"]
    with pytest.raises(KeyError, match="zebra"):
        load_word_vectors(["sky", "zebra"])


def test_ginet_unit_shapes():
    emb = load_word_vectors(CONTEXT)
    unit = GIUnit(8, emb, num_nodes=5, node_dim=4)
    x = _x(c=8)
    z, p = unit.visual_graph(x)
    assert tuple(z.shape) == (2, 5, 63) and tuple(p.shape) == (2, 5, 4)
    s = unit.sem_mlp(unit.embeddings)
    assert tuple(s.shape) == (6, 4)
    y = unit(x)
    assert tuple(y.shape) == (2, 8, 7, 9) and tuple(unit.class_logits.shape) == (2, 6)
    np.testing.assert_allclose(unit.embeddings.numpy(), emb)
    assert unit.embeddings.stop_gradient
    with pytest.raises(ValueError, match="non-zero"):
        GIUnit(8, np.zeros((6, 16)))


@pytest.mark.parametrize("name", ["context_baseline", "gcu", "glore", "ginet"])
def test_model_forward_backward_odd_size(name):
    # GINet's visual->semantic branch only feeds the semantic-context loss: switch it on
    kw = dict(sc_loss=True, classes=CONTEXT) if name == "ginet" else {}
    model = build_model(name, 6, depth=18, width=4, **kw)
    x = paddle.randn([2, 3, 37, 29])
    model.eval()
    assert tuple(model(x).shape) == (2, 6, 37, 29)
    model.train()
    out = model(x)
    assert [tuple(o.shape) for o in out[:2]] == [(2, 6, 37, 29)] * 2
    ContextLoss()(out, paddle.randint(0, 6, [2, 37, 29])).backward()
    unit_params = [p for p in model.unit.parameters() if not p.stop_gradient]
    assert all(p.grad is not None for p in unit_params)


def test_ginet_semantic_context_loss():
    model = build_model("ginet", 6, depth=18, width=4, sc_loss=True, classes=CONTEXT)
    model.train()
    out = model(paddle.randn([2, 3, 33, 33]))
    assert len(out) == 3 and tuple(out[2].shape) == (2, 6)
    label = paddle.to_tensor(np.array([[[0, 2], [255, 4]], [[1, 1], [1, 1]]]), dtype="int64")
    logits = paddle.zeros([2, 6])
    loss = ContextLoss(sc_weight=1.0)
    seg = paddle.zeros([2, 6, 2, 2])
    # zero logits: CE log 6 + BCE log 2; logits of the right sign remove the BCE only if the
    # presence targets are right (255 is ignored, not a class)
    target = np.array([[1, 0, 1, 0, 1, 0], [0, 1, 0, 0, 0, 0]], np.float32)
    assert abs(float(loss([seg, logits], label)) - np.log(6) - np.log(2)) < 1e-4
    assert abs(float(loss([seg, paddle.to_tensor(20 * (2 * target - 1))], label)) - np.log(6)) < 1e-4
    assert float(loss([seg, paddle.to_tensor(-20 * (2 * target - 1))], label)) > 10
    with pytest.raises(ValueError, match="class nodes"):
        build_model("glore", 6, depth=18, width=4, sc_loss=True)


def test_ginet_takes_the_class_names_from_its_caller():
    """The library guesses no dataset: GINet needs the names (or their vectors), as many as classes."""
    with pytest.raises(ValueError, match="classes="):
        build_model("ginet", 6, depth=18, width=4)
    with pytest.raises(ValueError, match="5 class names for 6 classes"):
        build_model("ginet", 6, depth=18, width=4, classes=CONTEXT[:5])
    model = build_model("ginet", 6, depth=18, width=4, embeddings=load_word_vectors(CONTEXT))
    np.testing.assert_array_equal(model.unit.embeddings.numpy(), load_word_vectors(CONTEXT))


@pytest.mark.parametrize("name", ["context_baseline", "gcu", "glore", "ginet"])
def test_model_learns_tiny_set(name, fit_tiny):
    images, labels = make_scenes(4, 32, seed=1, variant="context")
    x = paddle.to_tensor(np.stack([to_tensor_arrays(i) for i in images]))
    y = paddle.to_tensor(labels.astype("int64"))
    model = build_model(name, 6, depth=18, width=4, aux=False,
                        **(dict(classes=CONTEXT) if name == "ginet" else {}))
    losses = fit_tiny(model, lambda m: SegLoss()(m(x), y), steps=25, lr=1e-2)
    assert np.mean(losses[-3:]) < 0.6 * losses[0], losses


@pytest.mark.parametrize("depth,stage,kernel", [(18, 0, 1), (50, 1, 3), (18, 2, 3)])
def test_backbone_cut_keeps_output_size(depth, stage, kernel):
    model = build_model("gcu", 6, depth=depth, width=4, stage=stage, kernel=kernel, nodes=(2, 4))
    model.train()                                      # the aux head too
    assert [tuple(o.shape) for o in model(paddle.randn([1, 3, 35, 27]))] == [(1, 6, 35, 27)] * 2
    model.eval()
    assert tuple(model(paddle.randn([1, 3, 35, 27])).shape) == (1, 6, 35, 27)
    assert isinstance(model.backbone.layer4, paddle.nn.Identity)
    with pytest.raises(ValueError, match="stage"):
        build_model("glore", 6, depth=18, width=4, stage=5)


class _FixedPredictions:
    """A stand-in Trainer whose ``predict`` returns given label maps, batch by batch."""

    def __init__(self, preds):
        self.preds, self.i = preds, 0

    def predict(self, images):
        out = self.preds[self.i:self.i + len(images)]
        self.i += len(images)
        return out


class _Labels:
    classes, num_classes = CONTEXT, 6

    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return np.zeros((3, 2, 5), np.float32), self.labels[i]


def test_context_scores_swap_counts_only_pixels_called_a_hull():
    # 10 hull pixels: 4 boats (3 right, 1 called car), 6 cars (2 right, 2 called boat,
    # 2 called road); 10 road pixels, 1 called car. A miss (car -> road) is not a swap.
    from common.course.experiments.context_units import context_scores

    label = np.array([[4] * 4 + [5] * 6, [3] * 10], np.int64)
    pred = np.array([[4, 4, 4, 5, 5, 5, 4, 4, 3, 3], [5] + [3] * 9], np.int64)
    s = context_scores(_FixedPredictions(pred[None]), _Labels(label[None]))
    assert s["swap"] == pytest.approx(3 / 8)                 # 1 + 2 swapped of 8 called a hull
    assert s["hull_iou"] == pytest.approx(8 / 11)            # union: 10 hull + 1 road called car
    assert s["conf"][5, 3] == 2 and s["conf"][3, 5] == 1
    # a model that never predicts a hull has decided nothing: chance, not a perfect 0
    none = context_scores(_FixedPredictions(np.full((1, 2, 10), 3)), _Labels(label[None]))
    assert none["swap"] == 0.5 and none["hull_iou"] == 0


def test_harbour_street_scenes_hold_one_surface_and_its_hulls():
    from common.data import BOAT, CAR, ROAD, WATER, make_scene

    surfaces = set()
    for seed in range(12):
        s = make_scene(seed, 96, "harbour_street")
        ground = np.isin(s["semantic"], (WATER, ROAD))
        (surface,) = np.unique(s["semantic"][ground])          # exactly one ground surface
        surfaces.add(int(surface))
        assert set(s["labels"].tolist()) == {BOAT if surface == WATER else CAR}
    assert surfaces == {WATER, ROAD}
