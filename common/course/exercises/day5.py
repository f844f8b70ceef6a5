"""Day 5: GCU's graph projection, the graph convolution, the GloRe unit, GINet's graph
interaction."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from common.lang import N_, _
from common.models.graph import GIUnit, GloReUnit, GraphConvUnit, NodeGCN

from .framework import Case, _rng, check, run_check


@check("day5_context_graphs")
def check_gcu_projection(fn, verbose=True):
    """``fn(x, anchors, sigma)``: x (L, d) pixel features, anchors (d, V), sigma (d, V) ->
    (q, z): soft assignment q (L, V) = softmax over nodes of -||(x_i - w_k) / sigma_k||^2 / 2,
    and node features z (V, d) = sum_i q_ik (x_i - w_k) / sigma_k / sum_i q_ik, each row
    L2-normalised (GCU's graph projection).

    """

    rng = _rng(15)
    cases = []
    for l, d, v, log_sigma in [(4, 2, 2, (-0.5, 1.0)), (30, 8, 4, (-0.5, 1.0)), (64, 16, 8, (-0.5, 1.0)),
                               (12, 8, 3, (-3.0, -2.5))]:
        paddle.seed(int(rng.integers(1000)))
        unit = GraphConvUnit(d, v)
        unit.log_sigma.set_value(rng.uniform(*log_sigma, (d, v)).astype(np.float32))
        x = rng.standard_normal((l, d)).astype(np.float32)
        xf = paddle.to_tensor(x[None])
        q = unit.assign(xf)
        z = unit.project(xf, q)
        desc = _("L={l} pixels, d={d}, V={v} nodes").format(l=l, d=d, v=v)
        if log_sigma[1] < 0:
            desc += _(", small sigma: distances of hundreds (exp underflows unless the softmax is stable)")
        cases.append(Case(desc, (x, unit.anchors.numpy(), np.exp(unit.log_sigma.numpy())),
                          expected=(q[0].numpy(), z[0].numpy())))

    def variant(x, w, s, axis=1, norm_axis=1, half=0.5, power=1, stable=True, centre=True):
        d2 = (((x[:, :, None] - w[None]) / s[None]) ** 2).sum(1)
        logit = -half * d2
        with np.errstate(invalid="ignore", divide="ignore", under="ignore"):   # the unstable mistake: NaN
            e = np.exp(logit - logit.max(axis, keepdims=True) if stable else logit)
            q = e / e.sum(axis, keepdims=True)
        z = ((q.T @ x) / q.sum(0)[:, None] - (w.T if centre else 0)) / s.T ** power
        return q, z if norm_axis is None else z / np.linalg.norm(z, axis=norm_axis, keepdims=True)

    mistakes = [(N_("q is a distribution over the nodes for each pixel: the softmax runs along the node "
                    "axis (V), not over the pixels"), lambda x, w, s: variant(x, w, s, axis=0)),
                (N_("the exponent is minus *half* the scaled squared distance (a Gaussian)"),
                 lambda x, w, s: variant(x, w, s, half=1.0)),
                (N_("sigma is a scale (a standard deviation): divide the residuals by sigma, not by "
                    "sigma squared"), lambda x, w, s: variant(x, w, s, power=2)),
                (N_("z_k averages the residuals x_i - w_k (subtract the node's anchor), not the features"),
                 lambda x, w, s: variant(x, w, s, centre=False)),
                (N_("normalise each node's feature z_k (a row of z) to unit length, not each column"),
                 lambda x, w, s: variant(x, w, s, norm_axis=0)),
                (N_("last step: divide each node's feature z_k by its L2 norm (GCU's node features have "
                    "unit length)"), lambda x, w, s: variant(x, w, s, norm_axis=None)),
                (N_("exp of large negative numbers underflows to 0 and 0/0 is NaN: subtract each row's "
                    "largest logit before exp (a stable softmax)"), lambda x, w, s: variant(x, w, s, stable=False))]
    return run_check("check_gcu_projection", fn, cases,
                     N_("q is a softmax over the nodes of minus half the squared distance, measured in "
                        "units of sigma (per dimension and node); z_k is the q-weighted mean of the scaled "
                        "residuals (x_i - w_k) / sigma_k, then divided by its own length. Check the "
                        "axis of each sum and of the softmax."), mistakes, atol=1e-4, verbose=verbose)


def _graph_conv_ref(v, a_g, w_g, relu=True):
    """Z = ReLU((I - A_g) V) W_g (``relu``) or (I - A_g) V W_g, via ``NodeGCN`` where it applies."""
    v, a, w = (paddle.to_tensor(np.asarray(t, np.float32)) for t in (v, a_g, w_g))
    k, s = a.shape[0], w.shape[0]
    if relu and w.shape[1] == s:                  # the course's layer: Conv1D weights (out, in, 1)
        gcn = NodeGCN(k, s)
        gcn.node_conv.weight.set_value(a.unsqueeze(-1))
        gcn.state_conv.weight.set_value(w.T.unsqueeze(-1))
        return gcn(v).numpy()
    h = v - paddle.matmul(a, v)
    return paddle.matmul(F.relu(h) if relu else h, w).numpy()


@check("day5_context_graphs")
def check_graph_conv(fn, verbose=True):
    """``fn(v, a_g, w_g, relu=True)``: Paddle tensors, node features V (N, K, S) (K nodes, S
    states), the adjacency A_g (K, K) and the state update W_g (S, S') -> Z (N, K, S'): GloRe's graph
    convolution Z = (I - A_g) V W_g, with a ReLU between the two products when ``relu``
    (the authors' code and ``common.models.graph.NodeGCN``), Z = ReLU((I - A_g) V) W_g.

    """
    rng = _rng(22)
    cases = []
    # by hand: two nodes, A_g sends node 1's state to node 0; W_g = I
    v = np.array([[[1.0, -2.0], [3.0, 1.0]]], np.float32)
    a = np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)
    cases.append(Case(N_("by hand: 2 nodes, A_g[0, 1] = 1, W_g = I (node 0 becomes v0 - v1)"),
                      tuple(paddle.to_tensor(t) for t in (v, a, np.eye(2, dtype=np.float32))), dict(relu=False)))
    for n, k, s, s_out, relu in [(1, 3, 4, 4, True), (2, 5, 3, 3, True), (2, 4, 6, 2, True),
                                 (1, 6, 5, 5, False), (3, 2, 4, 3, False)]:
        v = rng.standard_normal((n, k, s)).astype(np.float32)
        a = rng.normal(0, 0.5, (k, k)).astype(np.float32)            # not symmetric
        w = rng.normal(0, 0.5, (s, s_out)).astype(np.float32)
        desc = _("N={n}, K={k} nodes, S={s} -> {s_out} states, relu={relu}").format(
            n=n, k=k, s=s, s_out=s_out, relu=relu)
        cases.append(Case(desc, (paddle.to_tensor(v), paddle.to_tensor(a), paddle.to_tensor(w)), dict(relu=relu)))
    for c in cases:
        c.expected = _graph_conv_ref(*c.args, **c.kwargs)

    def variant(v, a, w, relu=True, sign=-1, transpose=False, identity=True, relu_last=False):
        v, a, w = (np.asarray(t.numpy() if hasattr(t, "numpy") else t, np.float64) for t in (v, a, w))
        a = a.T if transpose else a
        h = (v if identity else 0) + sign * np.einsum("kj,njs->nks", a, v)
        if relu and not relu_last:
            h = np.maximum(h, 0)
        z = h @ w
        return np.maximum(z, 0) if relu and relu_last else z

    mistakes = [(N_("the operator is I - A_g: subtract A_g V from V (the paper's sign)"),
                 lambda v, a, w, relu=True: variant(v, a, w, relu, sign=1)),
                (N_("keep each node's own state: the I in I - A_g (Z starts from V, not from -A_g V)"),
                 lambda v, a, w, relu=True: variant(v, a, w, relu, identity=False)),
                (N_("row k of A_g holds the weights node k gives to every node j: (A_g V)[k] = "
                    "sum_j A_g[k, j] V[j], not A_g transposed"),
                 lambda v, a, w, relu=True: variant(v, a, w, relu, transpose=True)),
                (N_("the ReLU goes between the two products, on (I - A_g) V, before W_g"),
                 lambda v, a, w, relu=True: variant(v, a, w, relu, relu_last=True)),
                (N_("relu=False is the paper's linear form (no ReLU at all); relu=True puts one ReLU "
                    "before W_g"), lambda v, a, w, relu=True: variant(v, a, w, not relu)),
                (N_("A_g mixes the nodes (axis 1 of V) and W_g the states (its last axis): V W_g "
                    "multiplies V by W_g on the right"), lambda v, a, w, relu=True: variant(v, a, np.asarray(
                     w.numpy() if hasattr(w, "numpy") else w).T, relu))]
    return run_check("check_graph_conv", fn, cases,
                     N_("two products: A_g acts across the K nodes (each node takes a weighted sum of the "
                        "others' states, minus from its own), W_g across the S states; with relu=True a "
                        "ReLU sits between them. The batch axis N comes first and stays."),
                     mistakes, verbose=verbose)


@check("day5_context_graphs")
def check_glore_unit(fn, verbose=True):
    """``fn(x, unit)``: the forward pass of a ``GloReUnit`` written out with its parts:
    states = unit.state(x) (N, S, H, W) and B = unit.proj(x) (N, nodes, H, W), both flattened
    over the L = H*W pixels; V = B states^T / L (N, nodes, S); Z = unit.gcn(V) (or your
    ``graph_conv`` with the unit's weights); Y = B^T Z back to pixels (N, S, H, W); return
    x + unit.bn(unit.extend(Y)).

    """

    rng = _rng(16)
    cases = []
    for n, c, hw, states, nodes in [(1, 8, (4, 4), None, None), (2, 16, (6, 5), 6, 3), (1, 12, (3, 7), 4, 9)]:
        paddle.seed(int(rng.integers(1000)))
        unit = GloReUnit(c, num_states=states, num_nodes=nodes)
        unit.bn.weight.set_value(rng.uniform(0.5, 1.5, c).astype(np.float32))   # not the identity
        unit.bn.bias.set_value(rng.normal(0, 0.3, c).astype(np.float32))
        unit.bn._mean.set_value(rng.normal(0, 0.3, c).astype(np.float32))        # as if trained
        unit.bn._variance.set_value(rng.uniform(0.5, 2.0, c).astype(np.float32))
        unit.eval()
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        s, k = unit.gcn.state_conv.weight.shape[0], unit.gcn.node_conv.weight.shape[0]
        desc = _("N={n}, C={c}, {hw}, S={s} states, {k} nodes").format(n=n, c=c, hw=hw, s=s, k=k)
        cases.append(Case(desc, (x, unit), expected=unit(x).numpy()))

    def variant(x, unit, divide=True, residual=True, bn=True, transpose_y=True, same_b=True):
        n, c, h, w = x.shape
        s = unit.state(x).reshape([n, -1, h * w])                 # (N, S, L)
        b = unit.proj(x).reshape([n, -1, h * w])                  # (N, k, L)
        v = paddle.matmul(b, s, transpose_y=True)                 # (N, k, S)
        v = v / (h * w) if divide else v
        z = unit.gcn(v)
        y = paddle.matmul(b, z, transpose_x=True) if same_b else paddle.matmul(
            F.softmax(b, axis=1), z, transpose_x=True)
        y = (y.transpose([0, 2, 1]) if transpose_y else y).reshape([n, -1, h, w])
        out = unit.extend(y)
        out = unit.bn(out) if bn else out
        return x + out if residual else out

    mistakes = [(N_("divide V = B X^T by the number of pixels L = H*W (the unit accepts any size)"),
                 lambda x, u: variant(x, u, divide=False)),
                (N_("the unit is residual: return x + BN(W_e(Y))"), lambda x, u: variant(x, u, residual=False)),
                (N_("BN follows W_e (the 1x1 extend conv); in eval mode it uses its running statistics"),
                 lambda x, u: variant(x, u, bn=False)),
                (N_("B^T Z is (N, L, S): bring the states to axis 1, (N, S, L), before reshaping to "
                    "(N, S, H, W); a reshape alone scrambles pixels and states"),
                 lambda x, u: variant(x, u, transpose_y=False))]
    return run_check("check_glore_unit", fn, cases,
                     N_("project: V is the average over the L pixels of the states, weighted by B (one "
                        "row per node); reason: Z = unit.gcn(V); re-project with the same B, transposed, "
                        "so every pixel collects the nodes it voted for; restore the (N, S, H, W) layout "
                        "before unit.extend, then unit.bn, then the residual sum."), mistakes, verbose=verbose)


def _gi_ref(p, s, unit):
    """GIUnit's reasoning, as in its forward: semantic -> visual, then visual -> semantic."""
    p_o = unit.gcn_v(p + unit.attend(p, s, unit.s2v(s)))
    s_o = unit.gcn_s(s + unit.attend(s, p_o, unit.v2s(p_o)))
    return p_o.numpy(), s_o.numpy()


@check("day5_context_graphs")
def check_gi_reasoning(fn, verbose=True):
    """``fn(p, s, unit)``: the visual graph P (N, K, D), the semantic graph S (N, M, D) and a
    ``GIUnit`` -> (P_o, S_o): semantic -> visual, A_sv = softmax over the M classes of
    P S^T / sqrt(D), P_o = unit.gcn_v(P + A_sv unit.s2v(S)); then visual -> semantic with the
    *new* visual nodes, A_vs = softmax over the K visual nodes of S P_o^T / sqrt(D),
    S_o = unit.gcn_s(S + A_vs unit.v2s(P_o)) (GINet's graph interaction).

    """
    rng = _rng(23)
    cases = []
    for n, k, m, d in [(1, 3, 2, 4), (2, 5, 6, 8), (1, 8, 4, 6)]:
        paddle.seed(int(rng.integers(1000)))
        unit = GIUnit(8, rng.standard_normal((m, 5)).astype(np.float32) + 0.1, num_nodes=k, node_dim=d)
        unit.eval()
        p = paddle.to_tensor(rng.normal(0, 2, (n, k, d)).astype(np.float32))
        s = paddle.to_tensor(rng.normal(0, 2, (n, m, d)).astype(np.float32))
        desc = _("N={n}, K={k} visual nodes, M={m} classes, D={d}").format(n=n, k=k, m=m, d=d)
        cases.append(Case(desc, (p, s, unit),
                          expected=_gi_ref(p, s, unit)))

    def attend(q, keys, values, axis=-1, scale=True):
        logits = paddle.matmul(q, keys, transpose_y=True) / (np.sqrt(q.shape[-1]) if scale else 1.0)
        return paddle.matmul(F.softmax(logits, axis=axis), values)

    def variant(p, s, u, axis=-1, scale=True, fresh=True, residual=True, swap=False):
        sv, vs = (u.v2s, u.s2v) if swap else (u.s2v, u.v2s)
        p_o = u.gcn_v((p if residual else 0) + attend(p, s, sv(s), axis, scale))
        reader = p_o if fresh else p
        s_o = u.gcn_s((s if residual else 0) + attend(s, reader, vs(reader), axis, scale))
        return p_o.numpy(), s_o.numpy()

    mistakes = [(N_("each visual node spreads its attention over the classes: the softmax of P S^T runs "
                    "over the last axis (one distribution per row)"),
                 lambda p, s, u: variant(p, s, u, axis=1)),
                (N_("divide the dot products by sqrt(D) before the softmax"),
                 lambda p, s, u: variant(p, s, u, scale=False)),
                (N_("visual -> semantic reads the *updated* visual nodes P_o, not P"),
                 lambda p, s, u: variant(p, s, u, fresh=False)),
                (N_("keep the residual: the graph convolution gets P + (what the classes send), and "
                    "S + (what the visual nodes send)"), lambda p, s, u: variant(p, s, u, residual=False)),
                (N_("unit.s2v transforms the semantic nodes sent to the visual graph, unit.v2s the "
                    "visual nodes sent to the semantic graph"), lambda p, s, u: variant(p, s, u, swap=True))]
    return run_check("check_gi_reasoning", fn, cases,
                     N_("two rounds of attention: first every visual node takes a softmax-weighted mix of "
                        "the class nodes (transformed by s2v) and the visual graph is convolved; then every "
                        "class node takes a mix of the new visual nodes (transformed by v2s) and the "
                        "semantic graph is convolved. Dot products are scaled by 1/sqrt(D)."),
                     mistakes, verbose=verbose)
