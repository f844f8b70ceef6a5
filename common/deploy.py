"""The fast inference path: batch norm folded into convolutions, static graph, Paddle Inference.

- ``fold_batchnorm(model)``: an eval-mode copy whose batch norms (``BatchNorm1D/2D/3D``,
  ``SyncBatchNorm``, ``nn.BatchNorm``) that follow a convolution are merged into that
  convolution's weight and bias and replaced by ``nn.Identity``; the outputs stay equal to the
  eval-mode model within float rounding (checked on an example input).
- ``export_inference`` (``common.models.pretrained``) writes the static graph
  (``paddle.jit.save``); ``fold_bn=True`` folds first, ``image_shape`` fixes the input shape.
- ``create_predictor(prefix)``: a Paddle Inference predictor, oneDNN on CPU, TensorRT on a GPU
  when Paddle was built with it.
- ``fast_model(model, engine)``: a ``paddle.nn.Layer`` that runs ``model`` through one of the
  engines ``dynamic`` (as is), ``folded`` (BN folded, dygraph), ``static`` (``paddle.jit.load``
  of the export) or ``inference`` (Paddle Inference); it plugs into ``common.inference``
  (``predict``, ``sliding_window``) and the prediction CLI unchanged.
- ``bench_engines(...)`` / ``python -m common.deploy --bench``: the engines' speed, interleaved.

Shapes: the engines export the model once for any input size; several course models compute
paddings and crops from the input size in Python (U-Net's mirror padding, FCN's crops), which
``paddle.jit.save`` cannot trace with an unknown height and width, and those are exported
once per input shape (a few seconds each). Every program is checked against the dynamic
model on the first input of each shape, so a program whose trace baked in one size is never
used for another.

Cache: the programs are kept in ``export_cache()`` (``~/.cache/segcourse/exports``) under the
model's fingerprint (Paddle's version, the layer tree, the weights, the source of its layers
and of ``common``), so a second run of the same model skips folding and export; the input
shapes each program was checked at (``verified.<device>.json``) are not checked again, and a
program that failed its check is remembered (``<shape>.<device>.failed``, delete to retry).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import paddle
import paddle.nn as nn

from .data.download import user_cache

ENGINES = ("dynamic", "folded", "static", "inference")
_CONVS = (nn.Conv1D, nn.Conv2D, nn.Conv3D)
_TRANSPOSED = (nn.Conv1DTranspose, nn.Conv2DTranspose, nn.Conv3DTranspose)
_BATCH_NORMS = (nn.layer.norm._BatchNormBase, nn.BatchNorm)   # SyncBatchNorm, BatchNorm1D/2D/3D


# ----------------------------------------------------------------------------- folding
def _tensors(out):
    """The tensors of a model output (tensor, list/tuple, dict), in a fixed order."""
    if isinstance(out, paddle.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in _tensors(out[k])]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
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
            for t in _tensors(list(inputs)):
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
            out = [t.numpy() for t in _tensors(model(x))]
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


def _without_sync_bn(model):
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


def _rel_diff(got, want):
    """Largest difference of the arrays ``got`` to ``want`` relative to max(1, largest |want|)."""
    if [g.shape for g in got] != [w.shape for w in want]:
        return np.inf
    return max((float(np.abs(g - w).max()) / max(1.0, float(np.abs(w).max()))
                for g, w in zip(got, want) if w.size), default=0.0)


def _max_diff(model, x, want):
    """``_rel_diff`` of ``model``'s outputs on ``x``."""
    with paddle.no_grad():
        return _rel_diff([t.numpy() for t in _tensors(model(x))], want)


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
        work = _without_sync_bn(model)
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


# ----------------------------------------------------------------------------- predictors
def _program_files(prefix):
    prefix = str(prefix)
    for ext in (".json", ".pdmodel"):                 # PIR (Paddle 3 default) or the old format
        if os.path.isfile(prefix + ext):
            return prefix + ext, prefix + ".pdiparams"
    raise FileNotFoundError(f"no {prefix}.json or {prefix}.pdmodel (write one with export_inference)")


def tensorrt_available():
    """True when Paddle is built with CUDA and TensorRT and sees a GPU."""
    from paddle import inference

    return (paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
            and tuple(inference.get_trt_compile_version()) != (0, 0, 0))


def create_predictor(prefix, device="cpu", threads=None, onednn=True, tensorrt=None,
                     input_shape=None):
    """A Paddle Inference predictor of an exported program.

    Args:
        prefix: path prefix given to ``export_inference`` (``prefix.json``/``.pdmodel`` and
            ``prefix.pdiparams``).
        device: ``"cpu"`` or ``"gpu"``.
        threads: CPU math threads (default: ``OMP_NUM_THREADS``, which ``import common`` sets
            to the number of cores).
        onednn: use oneDNN (MKLDNN) kernels on CPU.
        tensorrt: on GPU, run subgraphs in TensorRT (None: when ``tensorrt_available()``).
        input_shape: the (N, C, H, W) the program was exported for, TensorRT's shape range.

    Returns:
        ``paddle.inference.Predictor``.
    """
    from paddle import inference

    model_file, params_file = _program_files(prefix)
    cfg = inference.Config(model_file, params_file)
    cfg.disable_glog_info()
    if device == "gpu":
        cfg.enable_use_gpu(256, 0)
        if tensorrt is None:
            tensorrt = tensorrt_available()
        if tensorrt:
            cfg.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=1,
                                       min_subgraph_size=3,
                                       precision_mode=inference.PrecisionType.Float32,
                                       use_static=False, use_calib_mode=False)
            if input_shape is not None:
                shapes = {"image": list(input_shape)}
                cfg.set_trt_dynamic_shape_info(shapes, shapes, shapes)
    elif device == "cpu":
        cfg.disable_gpu()
        cfg.set_cpu_math_library_num_threads(int(threads or os.environ.get("OMP_NUM_THREADS") or 1))
        if onednn:
            cfg.enable_onednn()
            if model_file.endswith(".json"):
                # Paddle 3.3's PIR oneDNN executor cannot run ops with a float-list attribute
                # (bilinear_interp's `scale`: "ConvertPirAttribute2RuntimeAttribute not support
                # ArrayAttribute<DoubleAttribute>", Paddle issue 79749). The placement pass moves
                # every op to oneDNN; without it the fusion passes still put the convolutions
                # (with their bias and activation) on oneDNN and the rest stays on Paddle's kernels.
                cfg.delete_pass("onednn_placement_pass")
        else:
            cfg.disable_onednn()
    else:
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    return inference.create_predictor(cfg)


class PredictorLayer(nn.Layer):
    """A Paddle Inference predictor as a ``paddle.nn.Layer``: tensor in, tensor(s) out."""

    def __init__(self, predictor):
        super().__init__()
        self.predictor = predictor
        self._input = predictor.get_input_handle(predictor.get_input_names()[0])
        self._outputs = [predictor.get_output_handle(n) for n in predictor.get_output_names()]

    def forward(self, x):
        x = np.ascontiguousarray(x.numpy() if isinstance(x, paddle.Tensor) else x, np.float32)
        self._input.reshape(list(x.shape))
        self._input.copy_from_cpu(x)
        self.predictor.run()
        outs = [paddle.to_tensor(h.copy_to_cpu()) for h in self._outputs]
        return outs[0] if len(outs) == 1 else outs


# ----------------------------------------------------------------------------- export cache
def export_cache():
    """Where ``FastModel`` keeps exported programs between runs: ``$SEGCOURSE_EXPORT_CACHE``,
    else ``user_cache() / "exports"`` (``~/.cache/segcourse/exports``). Safe to delete.

    Returns:
        the folder as a ``Path`` (not created here).
    """
    env = os.environ.get("SEGCOURSE_EXPORT_CACHE")
    return Path(env).expanduser() if env else user_cache() / "exports"


def _class_source(cls):
    """Source bytes of the module defining ``cls`` (the class alone when its module has no
    file, as in a notebook); None when Python cannot find it."""
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    try:
        return Path(path).read_bytes() if path else inspect.getsource(cls).encode()
    except (OSError, TypeError):
        return None


def model_fingerprint(model):
    """A hash of what an exported program of ``model`` depends on: Paddle's build, the layer
    tree (classes, their repr and public plain attributes), every parameter and buffer, the
    source of the modules that define its layers and of ``common`` (so editing the code
    invalidates the cache).

    Args:
        model: a ``paddle.nn.Layer``.

    Returns:
        32 hex digits, or None when the source of one of its layer classes is not available
        (then the program cannot be safely reused).
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(f"paddle {paddle.__version__} {paddle.version.commit}\n{model!r}\n".encode())
    classes = set()
    for name, layer in model.named_sublayers(include_self=True):
        # settings read in forward (UNet.padding, PSPModule.bins) that the repr does not show
        settings = sorted((k, repr(v)) for k, v in vars(layer).items() if k[0] != "_" and k != "training"
                          and isinstance(v, (bool, int, float, str, tuple, list, dict, type(None))))
        h.update(f"{name} {settings}\n".encode())
        classes.add(type(layer))
    for cls in sorted(classes, key=lambda c: (c.__module__, c.__qualname__)):
        if cls.__module__.split(".")[0] == "paddle":
            continue                               # covered by Paddle's build
        src = _class_source(cls)
        if src is None:
            return None
        h.update(f"{cls.__module__}.{cls.__qualname__}\n".encode() + src)
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.read_bytes())
    for name, value in model.state_dict().items():
        a = np.ascontiguousarray(value.numpy())
        h.update(f"{name} {a.dtype} {a.shape}\n".encode() + a.tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- engines
class FastModel(nn.Layer):
    """``model`` run by ``engine`` (see module doc): a Layer usable wherever the model is.

    The ``static`` and ``inference`` engines export the BN-folded model: once for any input
    size when the model traces so, else once per input shape, into ``cache_dir`` under the
    model's fingerprint (reused by later runs). On the first input of each shape the program
    is checked against the dynamic model (relative ``rtol``), Paddle Inference with oneDNN
    first, then without; a program that fails or differs is not used (and remembered as
    failed in the cache), a warning names why, and ``notes[shape]`` keeps the reasons.

    Args:
        model: a semantic model (eval mode is set). engine: one of ``ENGINES``.
        cache_dir: folder of the exported programs (default ``export_cache()``); False (or a
            folder that cannot be written): a temporary folder, removed with this object.
            device: ``"cpu"`` or ``"gpu"``.
        threads: CPU threads of Paddle Inference. rtol: tolerance of the check.
    """

    def __init__(self, model, engine="inference", cache_dir=None, device="cpu", threads=None,
                 rtol=1e-4):
        super().__init__()
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        self.engine, self.device, self.threads = engine, device, threads
        model.eval()
        self.dynamic = model
        self.folded = self._reference = self._folder = self._tmp = None
        # _any_size: the any-size program's loaded predictors, False once it is not usable
        self._programs, self.notes, self.rtol, self._any_size = {}, {}, rtol, {}
        self.cache_dir = cache_dir
        self.eval()

    def _folded(self, x):
        if self.folded is None:
            self.folded = fold_batchnorm(self.dynamic, example=x[:1])
        return self.folded

    def _expected(self, x):
        """The dynamic model's outputs on ``x`` (SyncBatchNorm as BatchNorm: no CPU kernel)."""
        if self._reference is None:
            sync = any(isinstance(layer, nn.SyncBatchNorm) for layer in self.dynamic.sublayers())
            self._reference = _without_sync_bn(self.dynamic) if sync else self.dynamic
            self._reference.eval()
        with paddle.no_grad():
            return [t.numpy() for t in _tensors(self._reference(x))]

    def program_folder(self):
        """The folder of this model's exported programs (see ``cache_dir``); a temporary one
        when the model has no fingerprint or the cache cannot be written (``notes["cache"]``
        says why)."""
        if self._folder is None:
            key = None if self.cache_dir is False else model_fingerprint(self.dynamic)
            if key is not None:
                root = export_cache() if self.cache_dir is None else Path(self.cache_dir)
                folder = root / f"{type(self.dynamic).__name__}-{key}"
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    if os.access(folder, os.W_OK):
                        self._folder = folder
                    else:
                        self.notes["cache"] = [f"{folder} is not writable"]
                except OSError as err:
                    self.notes["cache"] = [f"cannot create {folder}: {err}"]
            if self._folder is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="segcourse_export_")
                self._folder = Path(self._tmp.name)
        return self._folder

    def _failed_file(self, name):
        return self.program_folder() / f"{name}.{self.device}.failed"

    def _write(self, target, text):
        """Write ``text`` to ``target`` atomically; a read-only cache only costs time later."""
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, target)
        except OSError:
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)

    def _remember_failure(self, name, why):
        """Write why the program ``name`` is unusable, so later runs skip it."""
        self._write(self._failed_file(name), why)

    def _verified_file(self):
        return self.program_folder() / f"verified.{self.device}.json"

    def _verified(self):
        """``{input shape: [program name, candidate label]}`` checked equal in earlier runs."""
        try:
            return json.loads(self._verified_file().read_text())
        except (OSError, ValueError):
            return {}

    def _remember_verified(self, key, name, label):
        verified = self._verified()
        verified[_shape_name(key)] = [name, label]
        self._write(self._verified_file(), json.dumps(verified, indent=1, sort_keys=True))

    def _stored(self, x, shape):
        """``(prefix, None)`` of the program for ``shape`` (None: any size), from the cache or
        exported now, or ``(None, why)`` when it cannot be exported or failed before."""
        from .models.pretrained import export_inference

        name = _shape_name(shape)
        failed, final = self._failed_file(name), self.program_folder() / name
        if failed.is_file():
            return None, f"{failed.read_text()} (remembered in {failed}; delete it to retry)"
        try:
            _program_files(final / "model")
            return final / "model", None
        except FileNotFoundError:
            pass
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
        except OSError as err:
            return None, f"export for {name}: cannot write to {final.parent}: {err}"
        try:
            export_inference(self._folded(x), tmp / "model", image_shape=shape)
        except Exception as err:                  # noqa: BLE001 (any tracing failure)
            shutil.rmtree(tmp, ignore_errors=True)
            why = f"export for {name}: {type(err).__name__}: {str(err)[:300]}"
            if not isinstance(err, OSError):      # a full disk may not be full next time
                self._remember_failure(name, why)
            return None, why
        try:
            tmp.rename(final)                     # atomic: readers see a whole program or none
        except OSError:                           # another process stored it first
            shutil.rmtree(tmp, ignore_errors=True)
        return final / "model", None

    def _candidates(self, prefix, shape):
        """(label, loader) of the programs to try, fastest first."""
        if self.engine == "static":
            return [("paddle.jit.load", lambda: paddle.jit.load(str(prefix)))]
        return [(f"Paddle Inference (oneDNN {'on' if o else 'off'})",
                 lambda o=o: PredictorLayer(create_predictor(prefix, self.device, self.threads,
                                                             onednn=o, input_shape=shape)))
                for o in ((True, False) if self.device == "cpu" else (False,))]

    @staticmethod
    def _load(label, make, loaded):
        """The candidate ``label``, created once per object (None: it failed to load)."""
        if label not in loaded:
            loaded[label] = None
            loaded[label] = make()
            loaded[label].eval()
        return loaded[label]

    def _first_equal(self, candidates, x, want, problems, loaded):
        """(program, label, its output on ``x``) of the first candidate that loads, runs and
        agrees with ``want`` within ``rtol``; (None, None, None) when none does."""
        for label, make in candidates:
            if label in loaded and loaded[label] is None:
                continue                          # failed to load before; reported then
            try:
                out = self._load(label, make, loaded)(x)
                err = _rel_diff([t.numpy() for t in _tensors(out)], want)
            except Exception as exc:              # noqa: BLE001 (predictor creation or run)
                problems.append(f"{label}: {type(exc).__name__}: {str(exc)[:300]}")
                loaded[label] = None
                continue
            if err <= self.rtol:
                return loaded[label], label, out
            problems.append(f"{label}: outputs differ from the dynamic model by {err:.3g} "
                            f"(relative, tolerance {self.rtol:g}) at input {list(x.shape)}")
        return None, None, None

    def _checked(self, x, shape, want, problems, loaded):
        """``_first_equal`` of the stored program for ``shape`` (None: any size); a program
        none of whose candidates agrees is remembered as failed. Reasons go to ``problems``."""
        prefix, why = self._stored(x, shape)
        if prefix is None:
            if shape is None:                     # many models have none: not a warning
                self.notes["any size"] = [why]
            else:
                problems.append(why)
            return None, None, None
        before = len(problems)
        found = self._first_equal(self._candidates(prefix, shape), x, want, problems, loaded)
        if found[0] is None:
            self._remember_failure(_shape_name(shape), "; ".join(problems[before:]))
        return found

    def _trusted(self, x, key):
        """(program, its output on ``x``) of the program an earlier run checked equal at this
        input shape, or None (not checked before, gone, or it fails to load now)."""
        name, label = self._verified().get(_shape_name(key), (None, None))
        if name is None or self._failed_file(name).is_file():
            return None
        shape = None if name == "any" else key
        loaded = self._any_size if shape is None and self._any_size is not False else {}
        prefix = self.program_folder() / name / "model"
        for cand, make in self._candidates(prefix, shape):
            if cand == label:
                try:
                    prog = self._load(cand, make, loaded)
                    return prog, prog(x)
                except Exception:                 # noqa: BLE001 (then check anew)
                    return None
        return None

    def _load_checked(self, x, key):
        """(program, its output on ``x``) for inputs of shape ``key``.

        A program an earlier run checked at this shape is used as is. Else it is checked
        against the dynamic model on ``x``: first the program for any input size (where the
        model traces with an unknown size), then one for ``key``; each tried as Paddle
        Inference with oneDNN, then without; the first that agrees within ``rtol`` is used
        (and remembered). None agrees: the folded model, with a warning naming why."""
        trusted = self._trusted(x, key)
        if trusted is not None:
            self.notes[key] = []
            return trusted
        want = self._expected(x)
        problems = []
        prog = label = out = None
        if self._any_size is not False:
            prog, label, out = self._checked(x, None, want, problems, self._any_size)
            if prog is None:
                self._any_size = False            # wrong or missing: per-shape from now on
            else:
                self._remember_verified(key, "any", label)
        if prog is None:
            prog, label, out = self._checked(x, key, want, problems, {})
            if prog is not None:
                self._remember_verified(key, _shape_name(key), label)
        if prog is None:
            prog, label = self._folded(x), "the folded dygraph model"
            out = prog(x)
        if problems:
            warnings.warn(f"{self.engine} engine, {type(self.dynamic).__name__} at input "
                          f"{list(key)}: {'; '.join(problems)}; using {label}", stacklevel=4)
        self.notes[key] = problems
        return prog, out

    def forward(self, x):
        if self.engine == "dynamic":
            return self.dynamic(x)
        if self.engine == "folded":
            return self._folded(x)(x)
        key = tuple(x.shape)
        with paddle.no_grad():
            if key not in self._programs:         # the first input's output comes with its check
                self._programs[key], out = self._load_checked(x, key)
                return out
            return self._programs[key](x)

    def train(self, mode=True):
        if mode:
            raise RuntimeError("FastModel is for inference only (its batch norms are folded)")
        return self.eval()


def _shape_name(shape):
    """File name of the program for ``shape``: ``"any"`` (None) or ``"1x3x64x64"``."""
    return "any" if shape is None else "x".join(map(str, shape))


def fast_model(model, engine="inference", **kwargs):
    """``FastModel(model, engine, **kwargs)``; see its doc. ``engine="dynamic"`` returns
    ``model`` itself."""
    return model if engine == "dynamic" else FastModel(model, engine, **kwargs)


# ----------------------------------------------------------------------------- benchmark
def bench_engines(models=None, sizes=(96, 128, 256), batches=(1, 4), repeats=7, steps=3,
                  engines=ENGINES, num_classes=7, out=print, clock="wall"):
    """Seconds per forward of each engine, interleaved (A B C D A B C D ...).

    Each repeat times ``steps`` forwards of every engine in turn, so machine load hits them
    alike; the first call of every engine (export, predictor creation) is warm-up and not
    timed. Outputs are checked equal to the dynamic model (see ``tests/test_deploy.py``).

    Args:
        models: ``[(name, kwargs)]``; default the semantic models of ``common.course.bench``'s
            ``BENCH_MODELS`` ``deeplabv3``, ``deeplabv3plus``, ``pspnet``, ``unet``, ``fcn8s``.
        sizes, batches: input sizes (square) and batch sizes.
        repeats, steps: timed rounds, forwards per round.
        engines: subset of ``ENGINES``; the first is the reference of the speed-ups.
        out: printer of one line per (model, size, batch); None prints nothing.
        clock: ``"wall"`` (elapsed time) or ``"cpu"`` (this process's CPU time, all threads:
            the work done, less disturbed than elapsed time when other jobs share the cores;
            with more than one thread it also counts threads waiting in spin loops).

    Returns:
        list of dicts ``model, size, batch, <engine>: (min, median) s per image``,
        ``max_rel_diff`` (largest relative output difference to the dynamic model).
    """
    from common.course.bench import BENCH_MODELS  # moves to the course tools with the benchmarks

    timer = {"wall": time.perf_counter, "cpu": time.process_time}[clock]
    if models is None:
        wanted = ("deeplabv3", "deeplabv3plus", "pspnet", "unet", "fcn8s")
        models = [(n, k) for n, k in BENCH_MODELS if n in wanted]
    from .models import build_model

    rows = []
    for name, kwargs in models:
        paddle.seed(0)
        model = build_model(name, num_classes, **kwargs)
        model.eval()
        for size in sizes:
            for batch in batches:
                x = paddle.to_tensor(np.random.default_rng(0).standard_normal(
                    (batch, 3, size, size)).astype(np.float32))
                runs = {e: fast_model(model, e) for e in engines}
                with paddle.no_grad():
                    ref = model(x).numpy()
                    diff = 0.0
                    for f in runs.values():            # warm-up + equality
                        y = f(x).numpy()
                        diff = max(diff, float(np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-12)))
                    times = {e: [] for e in runs}
                    for _ in range(repeats):
                        for e, f in runs.items():
                            t = timer()
                            for _ in range(steps):
                                f(x).numpy()
                            times[e].append((timer() - t) / steps / batch)
                row = dict(model=name, size=size, batch=batch, max_rel_diff=diff,
                           **{e: (min(v), float(np.median(v))) for e, v in times.items()})
                rows.append(row)
                if out is not None:
                    base = row[engines[0]][1]
                    out(f"{name:14s} {size:4d}px b{batch}  " + "  ".join(
                        f"{e} {row[e][0] * 1e3:7.1f}/{row[e][1] * 1e3:7.1f} ms x{base / row[e][1]:4.2f}"
                        for e in engines) + f"  diff {diff:.1e}")
    return rows


CLI_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")   # scikit-image's, 300x451 to 512x512


def bench_cli(models=("deeplabv3plus", "unet"), repeats=2, num_classes=21, out=print):
    """Seconds of whole ``python -m common.predict`` runs on four photos, Python's start
    included: ``dynamic``, ``inference`` on an empty export cache (the first run of a model)
    and ``inference`` again (later runs), in turn, ``repeats`` rounds. Models are full size
    (``build_model`` defaults) with random weights: the speed does not depend on them.

    Args:
        models: ``build_model`` names. repeats: rounds. num_classes: of the models.
        out: printer of one line per model; None prints nothing.

    Returns:
        ``{model: {"dynamic" | "inference first run" | "inference later runs": [seconds]}}``.
    """
    import subprocess

    import cv2
    import skimage.data

    from .models import build_model, save_pretrained

    results = {}
    with tempfile.TemporaryDirectory(prefix="segcourse_bench_cli_") as tmp:
        tmp = Path(tmp)
        photos = []
        for name in CLI_PHOTOS:
            photos.append(str(tmp / f"{name}.jpg"))
            cv2.imwrite(photos[-1], getattr(skimage.data, name)()[..., ::-1])
        for name in models:
            paddle.seed(0)
            save_pretrained(build_model(name, num_classes), tmp / name)
            runs = {"dynamic": [], "inference first run": [], "inference later runs": []}
            for r in range(repeats):
                cache = tmp / f"cache_{name}_{r}"           # empty: the first run exports
                for label, engine in (("dynamic", "dynamic"), ("inference first run", "inference"),
                                      ("inference later runs", "inference")):
                    env = dict(os.environ, SEGCOURSE_EXPORT_CACHE=str(cache), PYTHONWARNINGS="ignore")
                    t = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "common.predict", "--model", str(tmp / name),
                                    "--out", str(tmp / "out"), "--engine", engine, "--quiet", *photos],
                                   env=env, check=True, capture_output=True)
                    runs[label].append(time.perf_counter() - t)
            results[name] = runs
            if out is not None:
                out(f"{name:14s} " + "  ".join(f"{k} {min(v):5.1f}-{max(v):5.1f} s" for k, v in runs.items()))
    return results


def main(argv=None):
    """``python -m common.deploy --bench [--models deeplabv3 unet] [--sizes 96 128]``, or
    ``--bench-cli`` (whole prediction CLI runs, see ``bench_cli``)."""
    p = argparse.ArgumentParser(prog="python -m common.deploy", description=__doc__.split("\n\n")[0])
    p.add_argument("--bench", action="store_true", help="time the engines against each other")
    p.add_argument("--bench-cli", action="store_true",
                   help="time whole `python -m common.predict` runs on four photos (see bench_cli)")
    p.add_argument("--models", nargs="+", help="names in common.course.bench.BENCH_MODELS")
    p.add_argument("--sizes", nargs="+", type=int, default=[96, 128, 256])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    p.add_argument("--repeats", type=int, help="rounds (default 7; --bench-cli: 2)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="elapsed time, or this process's CPU time (steadier on a busy machine)")
    args = p.parse_args(argv)
    if args.bench_cli:
        print(f"Paddle {paddle.__version__}, {os.environ.get('OMP_NUM_THREADS')} threads, load average "
              f"{os.getloadavg()[0]:.1f}; python -m common.predict on {', '.join(CLI_PHOTOS)}, "
              f"seconds (min-max of {args.repeats or 2} rounds)", flush=True)
        return bench_cli(args.models or ("deeplabv3plus", "unet"), args.repeats or 2,
                         out=lambda s: print(s, flush=True))
    if not args.bench:
        p.print_help()
        return None
    from common.course.bench import BENCH_MODELS  # moves to the course tools with the benchmarks

    models = None
    if args.models:
        known = dict(BENCH_MODELS)
        unknown = [m for m in args.models if m not in known]
        if unknown:
            p.error(f"unknown models {unknown}; choose from {sorted(known)}")
        models = [(m, known[m]) for m in args.models]
    paddle.set_device("cpu")
    warnings.filterwarnings("ignore", category=UserWarning, module="paddle")
    print(f"Paddle {paddle.__version__}, {os.environ.get('OMP_NUM_THREADS')} threads, "
          f"load average {os.getloadavg()[0]:.1f}; min/median {args.clock} ms per image, "
          f"x = speed-up over {args.engines[0]} (median)", flush=True)
    return bench_engines(models, args.sizes, args.batches, args.repeats or 7, args.steps,
                         tuple(args.engines), out=lambda s: print(s, flush=True), clock=args.clock)


if __name__ == "__main__":
    main()
