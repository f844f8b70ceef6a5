"""Batch norm folded into the convolution before it: an eval-mode copy with the same outputs.

``fold_batchnorm(model)`` finds the (convolution, batch norm) pairs by running an example
through the model with hooks, rescales each convolution's weight and bias by its batch norm's
running statistics (float64 arithmetic) and replaces the batch norm by ``nn.Identity``; the
copy's outputs are checked equal to the model's on that example.
"""
from __future__ import annotations

import copy

import numpy as np
import paddle
import paddle.nn as nn

_CONVS = (nn.Conv1D, nn.Conv2D, nn.Conv3D)
_TRANSPOSED = (nn.Conv1DTranspose, nn.Conv2DTranspose, nn.Conv3DTranspose)
_BATCH_NORMS = (nn.layer.norm._BatchNormBase, nn.BatchNorm)   # SyncBatchNorm, BatchNorm1D/2D/3D


def tensors(out):
    """The tensors of a model output (tensor, list/tuple, dict), in a fixed order."""
    if isinstance(out, paddle.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in tensors(out[k])]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in tensors(o)]
    return []


def _bn_stats(bn):
    """(gamma, beta, mean, var, eps) of a batch norm as float64 arrays."""
    c = bn._mean.shape[0]
    gamma = bn.weight.numpy().astype(np.float64) if bn.weight is not None else np.ones(c)
    beta = bn.bias.numpy().astype(np.float64) if bn.bias is not None else np.zeros(c)
    return (gamma, beta, bn._mean.numpy().astype(np.float64),
            bn._variance.numpy().astype(np.float64), float(bn._epsilon))


def _fold_pair(conv, bn):
    """Rescale ``conv`` so that conv' (x) = bn(conv(x)) in eval mode (float64 arithmetic)."""
    gamma, beta, mean, var, eps = _bn_stats(bn)
    scale = gamma / np.sqrt(var + eps)
    w = conv.weight.numpy().astype(np.float64)
    if isinstance(conv, _TRANSPOSED):
        # weight (C_in, C_out / groups, k...): output channel g * C_out/groups + j
        g = conv._groups
        w = w.reshape((g, w.shape[0] // g, w.shape[1]) + w.shape[2:])
        w = w * scale.reshape((g, 1, -1) + (1,) * (w.ndim - 3))
        w = w.reshape(conv.weight.shape)
    else:                                       # weight (C_out, C_in / groups, k...)
        w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    b = conv.bias.numpy().astype(np.float64) if conv.bias is not None else np.zeros(len(scale))
    b = (b - mean) * scale + beta
    dtype = conv.weight.dtype
    conv.weight.set_value(paddle.to_tensor(w.astype(np.float32)).astype(dtype))
    if conv.bias is None:                       # a conv without bias gets one (BN's shift)
        conv.bias = conv.create_parameter([len(b)], is_bias=True, dtype=dtype)
    conv.bias.set_value(paddle.to_tensor(b.astype(np.float32)).astype(dtype))


def _parent(model, name):
    parent = model
    *path, last = name.split(".")
    for part in path:
        parent = parent._sub_layers[part]
    return parent, last


def _trace_pairs(model, x):
    """(conv, bn) name pairs where every input of bn is an output of conv and every output of
    conv goes to bn and no other sublayer (a layer run several times per forward, as in
    DeepLab V2's multi-scale input, counts every call). Also returns the outputs."""
    layers = dict(model.named_sublayers())
    produced, conv_outs, consumers, bn_inputs, keep = {}, {}, {}, {}, []

    def pre(name):
        def hook(layer, inputs):
            keep.append(inputs)                 # alive tensors keep their ids unique
            for t in tensors(list(inputs)):
                consumers.setdefault(id(t), []).append(name)
            if isinstance(layer, _BATCH_NORMS):
                bn_inputs.setdefault(name, []).append(id(inputs[0]) if inputs else None)
        return hook

    def post(name):
        def hook(layer, inputs, out):
            keep.append(out)
            produced[id(out)] = name
            conv_outs.setdefault(name, []).append(id(out))
        return hook

    handles = []
    for name, layer in layers.items():
        if isinstance(layer, _CONVS + _TRANSPOSED + _BATCH_NORMS) or not layer._sub_layers:
            handles.append(layer.register_forward_pre_hook(pre(name)))
        if isinstance(layer, _CONVS + _TRANSPOSED):
            handles.append(layer.register_forward_post_hook(post(name)))
    try:
        with paddle.no_grad():
            out = [t.numpy() for t in tensors(model(x))]
    finally:
        for h in handles:
            h.remove()
    pairs = []
    for bn_name, ids in bn_inputs.items():
        convs = {produced.get(i) for i in ids}
        if len(convs) != 1 or None in convs:
            continue
        conv_name = convs.pop()
        bn = layers[bn_name]
        if (all(consumers.get(i) == [bn_name] for i in conv_outs[conv_name])
                and len(conv_outs[conv_name]) == len(ids)
                and getattr(bn, "_act", None) is None
                and bn._mean.shape[0] == _out_channels(layers[conv_name])):
            pairs.append((conv_name, bn_name))
    return pairs, out


def without_sync_bn(model):
    """A copy with every SyncBatchNorm replaced by an equal BatchNorm (same statistics and
    parameters): in eval mode they compute the same, and Paddle's CPU build has no
    sync_batch_norm kernel, so a model trained with it on GPUs runs on CPU after this."""
    model = copy.deepcopy(model)
    for name, layer in list(model.named_sublayers()):
        if isinstance(layer, nn.SyncBatchNorm):
            dims = {"NC": 1, "NCL": 1, "NLC": 1, "NCHW": 2, "NHWC": 2}.get(layer._data_format, 3)
            cls = {1: nn.BatchNorm1D, 2: nn.BatchNorm2D, 3: nn.BatchNorm3D}[dims]
            bn = cls(layer._num_features, momentum=layer._momentum, epsilon=layer._epsilon,
                     weight_attr=None if layer.weight is not None else False,
                     bias_attr=None if layer.bias is not None else False,
                     data_format=layer._data_format)
            bn.set_state_dict(layer.state_dict())
            parent, attr = _parent(model, name)
            setattr(parent, attr, bn)
    return model


def _folded_copy(model, pairs):
    model = copy.deepcopy(model)
    model.eval()
    layers = dict(model.named_sublayers())
    for conv_name, bn_name in pairs:
        _fold_pair(layers[conv_name], layers[bn_name])
        parent, attr = _parent(model, bn_name)
        setattr(parent, attr, nn.Identity())
    model.folded_batchnorms = list(pairs)
    return model


def rel_diff(got, want):
    """Largest difference of the arrays ``got`` to ``want`` relative to max(1, largest |want|)."""
    if [g.shape for g in got] != [w.shape for w in want]:
        return np.inf
    return max((float(np.abs(g - w).max()) / max(1.0, float(np.abs(w).max()))
                for g, w in zip(got, want) if w.size), default=0.0)


def _max_diff(model, x, want):
    """``rel_diff`` of ``model``'s outputs on ``x``."""
    with paddle.no_grad():
        return rel_diff([t.numpy() for t in tensors(model(x))], want)


def fold_batchnorm(model, example=None, rtol=1e-4):
    """A copy of ``model`` with every batch norm that directly follows a convolution folded
    into that convolution (its weight and bias rescaled, the batch norm replaced by
    ``nn.Identity``).

    The pairs are found by running ``example`` through the model with hooks: a batch norm
    is folded when its inputs are the outputs of one convolution and no other sublayer takes
    those outputs (a pair that runs several times per forward, e.g. at several scales, too).
    A convolution output that a functional op uses too (``bn(y) + y``) is invisible to
    hooks, so the copy's outputs are compared with the model's on ``example``; if they
    differ, each pair is tried alone and the pairs that change the output stay unfolded.
    Folding uses the running statistics: the result is an eval-mode model (training it
    would no longer train batch norm). Batch norms that follow no convolution (after a
    matmul, a pooling) stay; a remaining ``SyncBatchNorm`` becomes an equal ``BatchNorm``
    (Paddle's CPU build cannot run SyncBatchNorm).

    Args:
        model: a ``paddle.nn.Layer`` (not changed).
        example: an input tensor/array for the trace and the check; default a random
            (1, 3, 64, 64) float32 batch.
        rtol: largest accepted output difference, relative to max(1, largest |output|).

    Returns:
        The folded copy in eval mode; ``.folded_batchnorms`` lists its
        ``(conv name, bn name)`` pairs.
    """
    was_training = model.training
    model.eval()
    try:
        if example is None:
            example = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
        x = example if isinstance(example, paddle.Tensor) else paddle.to_tensor(
            np.asarray(example, np.float32))
        work = without_sync_bn(model)
        work.eval()
        pairs, want = _trace_pairs(work, x)
        folded = _folded_copy(work, pairs)
        if pairs and _max_diff(folded, x, want) > rtol:
            pairs = [p for p in pairs if _max_diff(_folded_copy(work, [p]), x, want) <= rtol]
            folded = _folded_copy(work, pairs)
            err = _max_diff(folded, x, want)
            if err > rtol:
                raise RuntimeError(f"folding batch norm changes {type(model).__name__}'s output "
                                   f"by {err:.3g} (relative) even pair by pair: {pairs}")
    finally:
        model.train(was_training)
    return folded


def _out_channels(conv):
    w = conv.weight.shape
    return w[1] * conv._groups if isinstance(conv, _TRANSPOSED) else w[0]


