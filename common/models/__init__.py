"""Models of the course, built by name.

>>> from common.models import build_model, list_models
>>> model = build_model('fcn8s', num_classes=7)                 # the paper's size
>>> small = build_model('fcn8s', num_classes=7, preset='cpu')   # the course's CPU size

One module per family (``tiny``, ``fcn``, ``unet``, ``pspnet``, ``deeplab``, ``graph``,
``mask_rcnn``, ``solo``, ``upsnet``, ``panoptic_deeplab``) on shared ``layers`` and
``backbones``; ``registry`` (``build_model``, ``list_models``), ``presets`` (the sizes "full",
"cpu", "tiny" of every model, in one table), ``pretrained`` (ImageNet backbone weights) and
``saving`` (``save_pretrained`` / ``load_pretrained``: a model rebuilt by name).

Output contract (checked for every registered model by tests/lib/models/test_model_contract.py).
Inputs are normalised float32 images (N, 3, H, W) of any H, W (odd sizes too).

- Semantic models (``tiny``, ``fcn8s/16s/32s``, ``unet``, ``pspnet``, ``deeplabv1/v2/v3/v3plus``,
  ``context_baseline``, ``gcu``, ``glore``, ``ginet``): eval mode returns the logits, one
  float32 tensor (N, K, H, W). Train mode returns that tensor, or a list ``[main, aux, ...]``
  of such tensors when the model has auxiliary outputs (PaddleSeg's convention; ``main``
  first, the one inference uses): PSPNet's and the context networks' FCN head on c4 with
  ``aux=True`` (their default), DeepLab V2's per-scale score maps ``[fused, 1, 0.75, 0.5]``;
  ``common.losses.SegLoss`` takes either form. A context network built with
  ``sc_loss=True`` (GINet) appends the (N, M) class-node logits, ``[main, aux,
  class_logits]``, which ``common.losses.ContextLoss`` takes.
- Panoptic-DeepLab: in both modes a dict ``semantic`` (N, K, H, W) logits, ``center``
  (N, 1, H, W) heatmap, ``offset`` (N, 2, H, W) (dy, dx) in input pixels; the loss is
  ``PanopticDeepLabLoss(thing_ids)(outputs, targets)``, the panoptic maps
  ``model.panoptic(images)`` -> int64 (N, H, W).
- Mask R-CNN, UPSNet, SOLO: train mode ``model(images, targets)`` (one target dict per
  image: ``boxes``, ``labels``, ``masks``, for UPSNet ``semantic`` too, as
  ``common.data.instances`` makes them) returns a dict of scalar loss tensors; the loss to
  minimise is its ``"loss"`` entry when present (SOLO's), else the sum of the entries
  (``common.engine.total_loss``). Eval mode ``model(images)`` returns a list of N dicts of
  NumPy arrays: ``labels`` (n,) int64, ``scores`` (n,) float32, ``masks`` (n, H, W) bool,
  and ``boxes`` (n, 4) float32 ``x0, y0, x1, y1`` (Mask R-CNN, UPSNet); UPSNet adds
  ``semantic`` (H, W) int64 and ``panoptic`` (H, W) int64.

Each model class says how ``common.engine.Trainer`` trains and scores it: ``task`` is
``"instance"`` on Mask R-CNN, UPSNet and SOLO, ``"panoptic"`` on Panoptic-DeepLab, and absent
(``"semantic"``) on the others.

``num_classes`` always counts every class of the dataset, K (stuff and things; the
semantic logits' channels). Instance models detect the subset ``thing_ids`` (dataset class
ids, default all) and their ``labels`` are those dataset ids, not 0-based thing indices.

Void: a semantic label of 255 (``ignore_index``) is not trained on and not scored.
Panoptic maps hold ``category * LABEL_DIVISOR + instance`` (``common.labels.LABEL_DIVISOR``,
instance 0 for stuff); a category in neither ``thing_ids`` nor ``stuff_ids`` is void, and
the models write void as category 255 (``common.labels.PANOPTIC_VOID`` = ``255 *
LABEL_DIVISOR``): UPSNet's unknown pixels, Panoptic-DeepLab's unassigned ones.
"""
from __future__ import annotations

# each family registers its names with ``registry.register`` when imported
from . import deeplab, fcn, graph, mask_rcnn, panoptic_deeplab, pspnet, solo, tiny, unet, upsnet  # noqa: F401
from .presets import PRESETS, preset_kwargs
from .registry import build_model, list_models, register
from .saving import load_pretrained, load_weights, save_pretrained

__all__ = ["build_model", "list_models", "register", "PRESETS", "preset_kwargs", "save_pretrained",
           "load_pretrained", "load_weights"]
