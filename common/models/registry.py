"""Name -> model-builder table behind ``build_model`` (one decorator, no import cycles)."""
from __future__ import annotations

from typing import Callable, Dict

_BUILDERS: Dict[str, Callable] = {}


def register(name: str):
    """Decorator: ``@register('fcn8s')`` on a function ``(num_classes, **kwargs) -> Layer``."""
    def deco(fn):
        if name in _BUILDERS:
            raise ValueError(f"model name {name!r} registered twice")
        _BUILDERS[name] = fn
        return fn
    return deco
