"""Day 5: context by graph reasoning. Three plug-in units and one network around them.

Every model here is ``ContextNet(backbone, unit, head)``: a dilated ResNet (output stride 8)
gives features, a 3x3 conv reduces them to ``mid`` channels, the *unit* adds global context,
and the same head (3x3 conv, dropout, 1x1 classifier, bilinear upsampling) predicts classes.
Only the unit differs, so a comparison measures the unit:

- ``context_baseline``: ``IdentityUnit``, no context beyond the backbone's receptive field.
- ``gcu``:   ``GCUBlock``, several Graph Convolutional Units (Li & Gupta, NeurIPS 2018,
  "Beyond Grids"): pixels are softly assigned to |V| learnable Gaussian anchors, a graph is
  built among the node features and convolved, and the nodes are re-projected with the
  same assignment Q; the outputs of units with 2, 4, 8 and 32 nodes are concatenated with
  the input.
- ``glore``: ``GloReUnit`` (Chen et al., CVPR 2019): V = B X, Z = (I - A_g) V W_g,
  Y = X + BN(W_e (B^T Z)) with BN's gamma at zero, so the unit starts as the identity.
- ``ginet``: ``GIUnit`` (Wu et al., ECCV 2020): a visual graph P = Z X W and a semantic
  graph S = MLP(L) from word vectors of the class names, reasoning semantic -> visual and
  visual -> semantic, output X_o = X + Z^T P_o W_o; optional semantic-context loss.

Sign and ReLU of the GloRe graph convolution (paper vs. the authors' code)
--------------------------------------------------------------------------
The paper writes the graph convolution as Z = (I - A_g) V W_g, with no nonlinearity in the
equation. The reference code (facebookresearch/GloRe, ``GCN``) computes
``conv2(relu(conv1(V^T)^T + V))``, i.e. Z = ReLU((I + A) V + b) W_g: a plus sign, a bias
on the node conv and a ReLU between the node-wise and the state-wise Conv1D. Because A_g
is learned and its initialisation is symmetric around zero, I - A_g and I + A are the same
family (A = -A_g); we keep the paper's minus sign so the code reads like the equation, and
the code's ReLU placement (between the two Conv1D), without the bias. ``NodeGCN`` is that
block; GINet reuses it.

The reference code divides V = B X by the number of pixels only when ``normalize=True``
("if the input size is not fixed"); our models accept any H, W, so we always divide.

Word vectors for GINet
----------------------
GINet's semantic graph starts from word vectors of the dataset's class names: ``ginet``
takes the names (``classes=``, looked up in ``common.data.word_vectors``, count-based vectors
shipped with the course) or the vectors themselves (``embeddings=``).
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..data.word_vectors import load_word_vectors
from .backbones.resnet import ResNet
from .layers import ConvBNReLU, SegHead, resize_to
from .registry import register

CONTEXT_MODELS = ("context_baseline", "gcu", "glore", "ginet")


def _flat(x):
    """(N, C, H, W) -> (N, H*W, C): one row per pixel."""
    n, c = x.shape[:2]
    return x.reshape([n, c, -1]).transpose([0, 2, 1])


def _unflat(y, hw):
    """(N, H*W, C) -> (N, C, H, W)."""
    return y.transpose([0, 2, 1]).reshape([y.shape[0], y.shape[2], *hw])


class IdentityUnit(nn.Layer):
    """No context unit: the baseline of the comparison."""

    def __init__(self, in_channels):
        super().__init__()
        self.out_channels = in_channels

    def forward(self, x):
        return x


# ----------------------------------------------------------------------------- GCU
class GraphConvUnit(nn.Layer):
    """One GCU: graph projection, graph convolution, graph re-projection.

    x (N, d, H, W) -> (N, out, H, W). Shapes inside, with L = H*W and V = num_nodes:
    Q (N, L, V) soft assignment; Z (N, V, d) node features; A (N, V, V) adjacency;
    Z~ (N, V, out) after the graph convolution; Q Z~ (N, L, out) re-projected.
    After a forward pass ``self.last_q`` holds Q as maps (N, V, H, W).

    Args:
        in_channels: d.
        num_nodes: V, the graph's vertices.
        out_channels: channels of the output (default d).
    """

    def __init__(self, in_channels, num_nodes, out_channels=None):
        super().__init__()
        d, out = in_channels, out_channels or in_channels
        self.num_nodes, self.out_channels = num_nodes, out
        # Anchors w_k and per-dimension scales sigma_k of V Gaussians. sigma starts at sqrt(d):
        # the squared distances then differ by O(1) between anchors, so Q starts soft.
        self.anchors = self.create_parameter([d, num_nodes],
                                             default_initializer=nn.initializer.Normal(0, 1))
        self.log_sigma = self.create_parameter(
            [d, num_nodes], default_initializer=nn.initializer.Constant(0.5 * np.log(d)))
        self.weight = nn.Linear(d, out, bias_attr=False)          # W_g of the graph conv
        self.bn = nn.BatchNorm2D(out)
        self.last_q = None

    def assign(self, xf):
        """Q (N, L, V): q_ik = softmax_k(-||(x_i - w_k) / sigma_k||^2 / 2)."""
        inv_var = paddle.exp(-2 * self.log_sigma)                   # 1 / sigma^2, (d, V)
        # ||(x-w)/s||^2 = x^2 . (1/s^2) - 2 x . (w/s^2) + sum(w^2/s^2), all as matmuls
        dist = (paddle.matmul(xf * xf, inv_var) - 2 * paddle.matmul(xf, self.anchors * inv_var)
                + (self.anchors ** 2 * inv_var).sum(0))
        return F.softmax(-0.5 * dist, axis=-1)

    def project(self, xf, q):
        """Z (N, V, d): z_k = sum_i q_ik (x_i - w_k) / sigma_k / sum_i q_ik, L2-normalised."""
        mass = q.sum(1).unsqueeze(-1) + 1e-6                         # (N, V, 1)
        z = paddle.matmul(q, xf, transpose_x=True) - mass * self.anchors.T  # (N, V, d)
        z = z / paddle.exp(self.log_sigma).T / mass
        return F.normalize(z, axis=-1)

    def forward(self, x, return_q=False):
        hw = x.shape[-2:]
        xf = _flat(x)                                                # (N, L, d)
        q = self.assign(xf)                                          # (N, L, V)
        z = self.project(xf, q)                                      # (N, V, d)
        adj = F.softmax(paddle.matmul(z, z, transpose_y=True), -1)   # (N, V, V) rows sum to 1
        z = F.relu(self.weight(paddle.matmul(adj, z)))               # (N, V, out)
        y = F.relu(self.bn(_unflat(paddle.matmul(q, z), hw)))        # (N, out, H, W)
        self.last_q = _unflat(q, hw).detach()
        return (y, q) if return_q else y


class GCUBlock(nn.Layer):
    """GCUs with several node counts, concatenated with their input (paper: 2, 4, 8, 32).

    Args:
        in_channels: channels of the input.
        nodes: the node count of each GCU.
        out_channels: channels of each GCU's output (default ``in_channels``).
    """

    def __init__(self, in_channels, nodes=(2, 4, 8, 32), out_channels=None):
        super().__init__()
        self.gcus = nn.LayerList([GraphConvUnit(in_channels, v, out_channels) for v in nodes])
        self.out_channels = in_channels + sum(g.out_channels for g in self.gcus)

    def forward(self, x):
        return paddle.concat([x] + [g(x) for g in self.gcus], axis=1)

    @property
    def assignments(self):
        """The Q maps (N, V, H, W) of each GCU from the last forward pass."""
        return [g.last_q for g in self.gcus]


# --------------------------------------------------------------------------- GloRe
class NodeGCN(nn.Layer):
    """Graph convolution on node features V (N, nodes, states): Z = ReLU((I - A_g) V) W_g,
    as two Conv1D: across nodes (A_g), then across states (W_g). See the module doc for
    how sign and ReLU relate to the GloRe paper and code.

    Args:
        num_nodes: nodes of the graph.
        num_states: feature dimension of each node.
    """

    def __init__(self, num_nodes, num_states):
        super().__init__()
        self.node_conv = nn.Conv1D(num_nodes, num_nodes, 1, bias_attr=False)    # A_g
        self.state_conv = nn.Conv1D(num_states, num_states, 1, bias_attr=False)  # W_g

    def forward(self, v):
        h = F.relu(v - self.node_conv(v))                            # (I - A_g) V, nodes as channels
        return self.state_conv(h.transpose([0, 2, 1])).transpose([0, 2, 1])


class GloReUnit(nn.Layer):
    """Global reasoning unit: x (N, C, H, W) -> x + BN(W_e(B^T Z)) of the same shape.

    Inside (L = H*W): states phi(x) (N, L, S); projection B (N, nodes, L); V = B phi(x) / L
    (N, nodes, S); Z = NodeGCN(V); back to pixels B^T Z (N, L, S); 1x1 conv to C; BN whose
    gamma starts at zero so the unit is the identity at initialisation (as in the paper).
    Defaults follow the reference code's ratio: S = C / 2 states, nodes = C / 4.

    Args:
        in_channels: C.
        num_states: S (default C / 2).
        num_nodes: graph nodes (default C / 4).
    """

    def __init__(self, in_channels, num_states=None, num_nodes=None):
        super().__init__()
        c = in_channels
        s, k = num_states or max(c // 2, 1), num_nodes or max(c // 4, 1)
        self.out_channels = c
        self.state = nn.Conv2D(c, s, 1)                              # phi: reduce dimension
        self.proj = nn.Conv2D(c, k, 1)                               # B: projection to nodes
        self.gcn = NodeGCN(k, s)
        self.extend = nn.Conv2D(s, c, 1, bias_attr=False)            # W_e: back to C channels
        self.bn = nn.BatchNorm2D(c, epsilon=1e-4,
                                 weight_attr=nn.initializer.Constant(0.0))  # "blocker": zero gamma

    def forward(self, x):
        hw = x.shape[-2:]
        states = _flat(self.state(x))                                 # (N, L, S)
        b = _flat(self.proj(x)).transpose([0, 2, 1])                  # (N, nodes, L)
        v = paddle.matmul(b, states) / states.shape[1]                # (N, nodes, S)
        z = self.gcn(v)                                               # (N, nodes, S)
        y = paddle.matmul(b, z, transpose_x=True)                     # (N, L, S)
        return x + self.bn(self.extend(_unflat(y, hw)))


# --------------------------------------------------------------------------- GINet
class GIUnit(nn.Layer):
    """Graph interaction unit: x (N, C, H, W) -> X_o (N, C, H, W), plus class-node scores.

    Shapes (L = H*W, K visual nodes, M classes, D node dims, k word-vector dims):
    Z (N, K, L) projection; X W (N, L, D); visual graph P = Z X W / L (N, K, D);
    semantic graph S = MLP(L_emb) (M, D); semantic -> visual: P_o = GCN(P + A_sv S W_sv)
    with A_sv (N, K, M) = softmax over classes of P S^T; visual -> semantic:
    S_o = GCN(S + A_vs P_o W_vs) with A_vs (N, M, K); output X_o = X + BN(W_o(Z^T P_o)).
    ``self.class_logits`` (N, M) scores each class node of S_o for the semantic-context loss.

    Args:
        in_channels: C.
        embeddings: (M, k) word vectors of the classes, none zero.
        num_nodes: K visual nodes.
        node_dim: D (default C / 2).
        learn_embeddings: train the word vectors too (False: they stay fixed).
    """

    def __init__(self, in_channels, embeddings, num_nodes=64, node_dim=None, learn_embeddings=False):
        super().__init__()
        c = in_channels
        d = node_dim or max(c // 2, 1)
        emb = np.asarray(embeddings, np.float32)
        if emb.ndim != 2 or not np.all(np.linalg.norm(emb, axis=1) > 0):
            raise ValueError("embeddings must be an (M, k) array of non-zero word vectors")
        self.out_channels, self.node_dim = c, d
        self.embeddings = self.create_parameter(list(emb.shape),
                                                default_initializer=nn.initializer.Assign(emb))
        self.embeddings.stop_gradient = not learn_embeddings
        self.proj = nn.Conv2D(c, num_nodes, 1)                        # Z
        self.reduce = nn.Conv2D(c, d, 1, bias_attr=False)             # W
        self.sem_mlp = nn.Sequential(nn.Linear(emb.shape[1], d), nn.ReLU(), nn.Linear(d, d))
        self.s2v = nn.Linear(d, d, bias_attr=False)                   # W_sv
        self.v2s = nn.Linear(d, d, bias_attr=False)                   # W_vs
        self.gcn_v = NodeGCN(num_nodes, d)
        self.gcn_s = NodeGCN(emb.shape[0], d)
        self.score = nn.Linear(d, 1)                                  # class-node score (SC-loss)
        self.out = nn.Conv2D(d, c, 1, bias_attr=False)                # W_o
        self.bn = nn.BatchNorm2D(c)
        self.class_logits = None

    def visual_graph(self, x):
        """Z (N, K, L) and P = Z X W / L (N, K, D)."""
        z = _flat(self.proj(x)).transpose([0, 2, 1])
        return z, paddle.matmul(z, _flat(self.reduce(x))) / z.shape[2]

    @staticmethod
    def attend(query, keys, values):
        """softmax over keys of query . key / sqrt(D), applied to values."""
        a = F.softmax(paddle.matmul(query, keys, transpose_y=True) / np.sqrt(query.shape[-1]), -1)
        return paddle.matmul(a, values)

    def forward(self, x):
        hw = x.shape[-2:]
        z, p = self.visual_graph(x)                                   # (N,K,L), (N,K,D)
        s = self.sem_mlp(self.embeddings).unsqueeze(0).expand([x.shape[0], -1, -1])  # (N,M,D)
        p_o = self.gcn_v(p + self.attend(p, s, self.s2v(s)))          # semantic -> visual
        s_o = self.gcn_s(s + self.attend(s, p_o, self.v2s(p_o)))      # visual -> semantic
        self.class_logits = self.score(s_o).squeeze(-1)               # (N, M)
        y = paddle.matmul(z, p_o, transpose_x=True)                   # Z^T P_o: (N, L, D)
        return x + self.bn(self.out(_unflat(y, hw)))


# ----------------------------------------------------------------------- the network
class ContextNet(nn.Layer):
    """backbone -> 3x3 conv to ``mid`` -> ``unit`` -> head (3x3 conv, dropout, 1x1) -> resize.
    The unit is any Layer ``unit_fn(mid)`` with an ``out_channels`` attribute.

    Train mode returns ``[main, aux]`` (aux: an FCN head on c4, as PSPNet and GINet do),
    plus the (N, M) class-node logits when ``sc_loss`` is on (train with
    ``common.losses.ContextLoss``).
    ``stage`` < 4 cuts the backbone after ResNet stage ``stage`` (2: after layer2, still
    stride 8; 1: after layer1, stride 4; 0: the stem only, stride 4, an 11-pixel receptive
    field), and ``kernel=1`` makes the reduce and head convs 1x1: experiments on what
    context adds to a network that sees little around each pixel. ``head_conv=False`` drops
    the head's conv (dropout and the 1x1 classifier straight on the unit's output), as
    PaddleSeg's GloRe and GINet heads do.

    Args:
        backbone: a ``ResNet`` (stages after ``stage`` are replaced by identities).
        unit_fn: ``unit_fn(mid)`` -> the context unit.
        num_classes: K.
        mid: channels the unit sees.
        aux: add the auxiliary head on the stage before.
        sc_loss: return the unit's class-node logits in train mode (GIUnit only).
        dropout: before each classifier.
        stage: last ResNet stage used (0..4).
        kernel: kernel of the reduce and head convs (3, or 1).
        head_conv: keep the head's conv.
    """

    def __init__(self, backbone, unit_fn, num_classes, mid=512, aux=True, sc_loss=False,
                 dropout=0.1, stage=4, kernel=3, head_conv=True):
        super().__init__()
        if stage not in (0, 1, 2, 3, 4):
            raise ValueError(f"stage must be 0..4, got {stage}")
        for i in range(stage + 1, 5):                                  # drop the unused stages
            setattr(backbone, f"layer{i}", nn.Identity())
        self.backbone, self.stage = backbone, stage
        chans = [backbone.conv1.weight.shape[0]] + list(backbone.channels)   # stem, c2..c5
        c4, c5 = chans[max(stage - 1, min(stage, 1))], chans[stage]      # aux input: stage - 1
        self.reduce = ConvBNReLU(c5, mid, kernel)
        self.unit = unit_fn(mid)
        self.head = SegHead(self.unit.out_channels, mid if head_conv else None, num_classes, dropout, kernel)
        self.aux = SegHead(c4, max(c4 // 4, 1), num_classes, dropout) if aux else None
        if sc_loss and not hasattr(self.unit, "class_logits"):
            raise ValueError("sc_loss needs a unit with class nodes (GIUnit), "
                             f"not {type(self.unit).__name__}")
        self.sc_loss = sc_loss

    def unit_input(self, x):
        """The features the unit sees (N, mid, h, w), and the aux head's input."""
        feats = self.backbone(x)
        return self.reduce(feats[max(self.stage - 1, 0)]), feats[max(self.stage - 2, 0)]

    def forward(self, x):
        size = x.shape[-2:]
        feat, c4 = self.unit_input(x)
        out = resize_to(self.head(self.unit(feat)), size)
        if not self.training:
            return out
        outs = [out]
        if self.aux is not None:
            outs.append(resize_to(self.aux(c4), size))
        if self.sc_loss:
            outs.append(self.unit.class_logits)
        return outs if len(outs) > 1 else out


def _backbone(depth, width, pretrained):
    return ResNet(depth=depth, width=width, output_stride=8, pretrained=pretrained)


def _build(num_classes, unit_fn, depth=50, width=64, mid=None, aux=True, pretrained=None,
           sc_loss=False, stage=4, kernel=3, head_conv=True):
    backbone = _backbone(depth, width, pretrained)
    return ContextNet(backbone, unit_fn, num_classes, mid=mid or 8 * width, aux=aux,
                      sc_loss=sc_loss, stage=stage, kernel=kernel, head_conv=head_conv)


@register("context_baseline")
def context_baseline(num_classes, **kw):
    """The shared network with no context unit."""
    return _build(num_classes, IdentityUnit, **kw)


@register("gcu")
def gcu(num_classes, nodes=(2, 4, 8, 32), gcu_channels=None, **kw):
    """Beyond Grids: GCUs with ``nodes`` vertices, concatenated with the input features."""
    return _build(num_classes, lambda c: GCUBlock(c, nodes, gcu_channels), **kw)


@register("glore")
def glore(num_classes, num_states=None, num_nodes=None, **kw):
    """GloRe unit between the backbone and the head."""
    return _build(num_classes, lambda c: GloReUnit(c, num_states, num_nodes), **kw)


@register("ginet")
def ginet(num_classes, classes=None, embeddings=None, num_nodes=64, node_dim=None,
          learn_embeddings=False, **kw):
    """GINet: graph interaction unit with word vectors of the ``num_classes`` class names
    ``classes`` (``common.data.word_vectors``) or given ``embeddings`` (M, k). ``sc_loss=True``
    adds the class-node logits to the train-mode outputs for the semantic-context loss
    (train with ``loss_fn=common.losses.ContextLoss()``). Off by default: on the harbour/street
    scenes it teaches the class nodes presence but leaves the segmentation unchanged, and on
    the context scenes presence says nothing about which hull is which (notebook 04)."""
    if embeddings is None:
        if classes is None:
            raise ValueError("ginet needs the class names (classes=, e.g. a dataset's .classes) "
                             "or their word vectors (embeddings=)")
        if len(classes) != num_classes:
            raise ValueError(f"ginet: {len(classes)} class names for {num_classes} classes")
        embeddings = load_word_vectors(classes)
    return _build(num_classes, lambda c: GIUnit(c, embeddings, num_nodes, node_dim, learn_embeddings),
                  **kw)
