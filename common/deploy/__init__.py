"""The fast inference path: batch norm folded into convolutions, static graph, Paddle Inference.

One idea per module:

- ``fold``: ``fold_batchnorm(model)``, an eval-mode copy whose batch norms (``BatchNorm1D/2D/3D``,
  ``SyncBatchNorm``, ``nn.BatchNorm``) that follow a convolution are merged into that
  convolution's weight and bias and replaced by ``nn.Identity``; the outputs stay equal to the
  eval-mode model within float rounding (checked on an example input).
- ``predictor``: ``export_inference(model, path, image_shape, fold_bn)`` writes the static graph
  (``paddle.jit.save``); ``create_predictor(prefix)`` runs it in Paddle Inference, oneDNN on
  CPU, TensorRT on a GPU when Paddle was built with it; ``PredictorLayer`` wraps the predictor
  as a ``paddle.nn.Layer``.
- ``cache``: ``export_cache()`` (``~/.cache/segcourse/exports``), ``model_fingerprint(model)``
  (Paddle's version, the layer tree, the weights, the source of its layers and of ``common``)
  and ``ProgramCache``, so a second run of the same model skips folding and export; the input
  shapes each program was checked at (``verified.<device>.json``) are not checked again, and a
  program that failed its check is remembered (``<shape>.<device>.failed``, delete to retry).
- ``fast``: ``fast_model(model, engine)`` / ``FastModel``, a ``paddle.nn.Layer`` that runs
  ``model`` through one of the engines ``dynamic`` (as is), ``folded`` (BN folded, dygraph),
  ``static`` (``paddle.jit.load`` of the export) or ``inference`` (Paddle Inference); it plugs
  into ``common.inference`` (``predict``, ``sliding_window``) and the prediction CLI unchanged.

The engines' speed is measured by the course's benchmarks (``python -m common.course.bench
engines``).
"""
from .cache import ProgramCache, export_cache, model_fingerprint
from .fast import ENGINES, FastModel, fast_model
from .fold import fold_batchnorm
from .predictor import PredictorLayer, create_predictor, export_inference, tensorrt_available

__all__ = ["fold_batchnorm", "export_inference", "create_predictor", "PredictorLayer",
           "tensorrt_available", "export_cache", "model_fingerprint", "ProgramCache", "FastModel",
           "fast_model", "ENGINES"]
