"""Models of the course, built by name.

>>> from common.models import build_model, list_models
>>> model = build_model('fcn8s', num_classes=7)

A semantic model in eval mode maps (N, 3, H, W) to logits (N, num_classes, H, W) for any
H, W. In train mode a model with auxiliary heads returns a list ``[main, aux, ...]``.
"""
from __future__ import annotations

import importlib

from .registry import _BUILDERS, register
from .pretrained import export_inference, load_pretrained, save_pretrained

# Each family registers its names on import; a family still being written is skipped.
_FAMILIES = ("tiny", "fcn", "unet", "pspnet", "deeplab", "graph", "mask_rcnn", "solo",
             "upsnet", "panoptic_deeplab")
for _family in _FAMILIES:
    try:
        importlib.import_module(f"{__name__}.{_family}")
    except ModuleNotFoundError as _err:
        if _err.name != f"{__name__}.{_family}":
            raise


def list_models():
    """Names accepted by ``build_model``, sorted.

    Returns:
        list of str.
    """
    return sorted(_BUILDERS)


def build_model(name: str, num_classes: int, pretrained_backbone=None, **kwargs):
    """Build model ``name`` with ``num_classes`` outputs; kwargs go to its builder.

    ``pretrained_backbone``: ``True`` loads paddle.vision's ImageNet weights into the
    backbone (ResNet-18..152, VGG16; Paddle's download cache), a path loads a local
    paddle.vision state dict (see ``common.models.pretrained.load_backbone``; the report
    is kept in ``model.pretrained_report``). The name, ``num_classes`` and kwargs are
    recorded so ``save_pretrained`` / ``load_pretrained`` can rebuild the model.

    Args:
        name: one of ``list_models()``.
        num_classes: K, every class of the dataset (see the module docstring).
        pretrained_backbone: None, True (ImageNet weights) or a path, as above.
        **kwargs: the model's own arguments (its class docstring), e.g. ``width``, ``depth``.

    Returns:
        the ``paddle.nn.Layer``, in train mode, with the output contract of the module
        docstring.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    model = _BUILDERS[name](num_classes=num_classes, **kwargs)
    model._build_config = dict(name=name, num_classes=num_classes, kwargs=dict(kwargs))
    if pretrained_backbone is not None and pretrained_backbone is not False:
        from .pretrained import load_backbone

        model.pretrained_report = load_backbone(model, pretrained_backbone)
    return model


__all__ = ["build_model", "list_models", "register", "save_pretrained", "load_pretrained",
           "export_inference"]
