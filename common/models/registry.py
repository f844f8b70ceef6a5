"""Name -> builder table behind ``build_model``: ``@register(name)`` on each family's builders."""
from __future__ import annotations

from typing import Callable, Dict

from .presets import preset_kwargs
from .pretrained import load_backbone

_BUILDERS: Dict[str, Callable] = {}


def register(name: str):
    """Decorator: ``@register('fcn8s')`` on a function ``(num_classes, **kwargs) -> Layer``."""
    def deco(fn):
        if name in _BUILDERS:
            raise ValueError(f"model name {name!r} registered twice")
        _BUILDERS[name] = fn
        return fn
    return deco


def list_models():
    """Names accepted by ``build_model``, sorted.

    Returns:
        list of str.
    """
    return sorted(_BUILDERS)


def build_model(name: str, num_classes: int, pretrained_backbone=None, preset: str = "full", **kwargs):
    """Build model ``name`` with ``num_classes`` outputs, at the size ``preset``.

    ``preset``: ``"full"`` (the paper's size: the builder's defaults), ``"cpu"`` (the course's
    CPU size) or ``"tiny"`` (the tests'); see ``common.models.presets``, whose knobs ``width``
    and ``image_size`` scale a preset. ``pretrained_backbone``: ``True`` loads paddle.vision's
    ImageNet weights into the backbone (ResNet-18..152, VGG16; Paddle's download cache), a path
    loads a local paddle.vision state dict (see ``common.models.pretrained.load_backbone``; the
    report is kept in ``model.pretrained_report``). The name, ``num_classes`` and the builder's
    keyword arguments are recorded so ``save_pretrained`` / ``load_pretrained`` can rebuild the
    model.

    Args:
        name: one of ``list_models()``.
        num_classes: K, every class of the dataset (see the ``common.models`` docstring).
        pretrained_backbone: None, True (ImageNet weights) or a path, as above.
        preset: ``"full"``, ``"cpu"`` or ``"tiny"``, as above.
        **kwargs: the model's own arguments (its class docstring), e.g. ``width``, ``depth``,
            and a preset's knobs.

    Returns:
        the ``paddle.nn.Layer``, in train mode, with the output contract of the ``common.models``
        docstring.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    kwargs = preset_kwargs(name, preset, **kwargs)
    model = _BUILDERS[name](num_classes=num_classes, **kwargs)
    model._build_config = dict(name=name, num_classes=num_classes, kwargs=kwargs)
    if pretrained_backbone is not None and pretrained_backbone is not False:
        model.pretrained_report = load_backbone(model, pretrained_backbone)
    return model
