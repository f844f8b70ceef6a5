"""Static programs: ``export_inference`` writes one (``paddle.jit.save``), ``create_predictor``
runs it in Paddle Inference (oneDNN on CPU, TensorRT on a GPU when Paddle has it) and
``PredictorLayer`` makes that predictor a ``paddle.nn.Layer``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import paddle
import paddle.nn as nn

from .fold import fold_batchnorm


def export_inference(model, path, input_spec=None, image_shape=None, fold_bn=False):
    """Export ``model`` (in eval mode) for Paddle Inference with ``paddle.jit.save``.

    Args:
        model: a dygraph model.
        path: path prefix; writes ``path.json`` (Paddle 3's PIR; ``.pdmodel`` in the old
            format) and ``path.pdiparams``.
        input_spec: list of ``paddle.static.InputSpec``; default one float32 image batch
            ``image_shape``, or ``[None, 3, None, None]`` (any batch and size) without it.
        image_shape: (N, 3, H, W) to export for one input shape (None entries stay free).
            Models that compute paddings or crops from the input size in Python (U-Net,
            FCN, the graph units) can only be exported for a fixed H and W.
        fold_bn: fold batch norms into the convolutions first
            (``fold_batchnorm``, on a copy; ``model`` is not changed).

    Returns:
        ``path``; load with ``paddle.jit.load(path)`` or ``create_predictor``.
    """
    if input_spec is None:
        shape = list(image_shape) if image_shape is not None else [None, 3, None, None]
        if len(shape) != 4:
            raise ValueError(f"image_shape must be (N, C, H, W), got {image_shape!r}")
        input_spec = [paddle.static.InputSpec(shape, "float32", "image")]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if fold_bn:
        example = None
        if image_shape is not None and all(isinstance(d, int) and d > 0 for d in image_shape):
            example = np.random.default_rng(0).standard_normal(image_shape).astype(np.float32)
        model = fold_batchnorm(model, example=example)
    was_training = model.training
    model.eval()
    try:
        paddle.jit.save(model, str(path), input_spec=input_spec)
    finally:
        if was_training:
            model.train()
    return path


def program_files(prefix):
    """(program file, parameters file) of the program ``export_inference`` wrote at ``prefix``."""
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

    model_file, params_file = program_files(prefix)
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

