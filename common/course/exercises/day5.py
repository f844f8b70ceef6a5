"""Day 5: GCU's graph projection, the GloRe unit."""
from __future__ import annotations

import numpy as np
import paddle

from common.models.graph import GloReUnit, GraphConvUnit

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
    for l, d, v in [(4, 2, 2), (30, 8, 4), (64, 16, 8)]:
        paddle.seed(int(rng.integers(1000)))
        unit = GraphConvUnit(d, v)
        unit.log_sigma.set_value(rng.uniform(-0.5, 1.0, (d, v)).astype(np.float32))
        x = rng.standard_normal((l, d)).astype(np.float32)
        xf = paddle.to_tensor(x[None])
        q = unit.assign(xf)
        z = unit.project(xf, q)
        cases.append(Case(f"L={l} pixels, d={d}, V={v} nodes",
                          (x, unit.anchors.numpy(), np.exp(unit.log_sigma.numpy())),
                          expected=(q[0].numpy(), z[0].numpy())))

    def variant(x, w, s, axis=1, norm=True, scale=True):
        s = s if scale else np.ones_like(s)
        d2 = (((x[:, :, None] - w[None]) / s[None]) ** 2).sum(1)
        e = np.exp(-0.5 * d2 - (-0.5 * d2).max(axis, keepdims=True))
        q = e / e.sum(axis, keepdims=True)
        mass = q.sum(0)[:, None] + 1e-6
        z = (q.T @ x / mass - w.T) / s.T
        if norm:
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return q, z

    mistakes = [("q is a distribution over the nodes for each pixel: softmax along axis 1 (V)",
                 lambda x, w, s: variant(x, w, s, axis=0)),
                ("L2-normalise each node's feature z_k (divide by its norm)",
                 lambda x, w, s: variant(x, w, s, norm=False)),
                ("divide the differences by sigma_k (per dimension) in both q and z",
                 lambda x, w, s: variant(x, w, s, scale=False))]
    return run_check("check_gcu_projection", fn, cases,
                     "d2[i, k] = sum over dims of ((x_i - w_k) / sigma_k)^2; q = softmax(-d2 / 2, "
                     "axis=1); z = (q.T @ x / q.sum(0)[:, None] - anchors.T) / sigma.T; rows / norm",
                     mistakes, atol=1e-4, verbose=verbose)


@check("day5_context_graphs")
def check_glore_unit(fn, verbose=True):
    """``fn(x, unit)``: the forward pass of a ``GloReUnit`` written out with its parts:
    states = unit.state(x) (N, S, H, W) and B = unit.proj(x) (N, nodes, H, W), both flattened
    over the L = H*W pixels; V = B states^T / L (N, nodes, S); Z = unit.gcn(V); Y = B^T Z
    back to pixels (N, S, H, W); return x + unit.bn(unit.extend(Y)).

    """

    rng = _rng(16)
    cases = []
    for n, c, hw in [(1, 8, (4, 4)), (2, 16, (6, 5)), (1, 12, (3, 7))]:
        paddle.seed(int(rng.integers(1000)))
        unit = GloReUnit(c)
        unit.bn.weight.set_value(rng.uniform(0.5, 1.5, c).astype(np.float32))   # not the identity
        unit.eval()
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        cases.append(Case(f"N={n}, C={c}, {hw}", (x, unit), expected=unit(x).numpy()))

    def variant(x, unit, divide=True, residual=True, relu_out=False):
        n, c, h, w = x.shape
        s = unit.state(x).reshape([n, -1, h * w])                 # (N, S, L)
        b = unit.proj(x).reshape([n, -1, h * w])                  # (N, k, L)
        v = paddle.matmul(b, s, transpose_y=True)                 # (N, k, S)
        v = v / (h * w) if divide else v
        z = unit.gcn(v)
        y = paddle.matmul(b, z, transpose_x=True).transpose([0, 2, 1]).reshape([n, -1, h, w])
        out = unit.bn(unit.extend(y))
        return x + out if residual else out

    mistakes = [("divide V = B X^T by the number of pixels L = H*W (the unit accepts any size)",
                 lambda x, u: variant(x, u, divide=False)),
                ("the unit is residual: return x + BN(W_e(Y))", lambda x, u: variant(x, u, residual=False))]
    return run_check("check_glore_unit", fn, cases,
                     "flatten with reshape([N, -1, H*W]); V = matmul(B, states, transpose_y=True) / L; "
                     "Z = unit.gcn(V); Y = matmul(B, Z, transpose_x=True) is (N, L, S): transpose to "
                     "(N, S, L) before reshaping to (N, S, H, W)", mistakes, verbose=verbose)
