"""ImageNet weights for the backbones: ``build_model(..., pretrained_backbone=True | path)``.

- ``load_backbone(model, source)``: ``source`` is ``True`` (paddle.vision's ImageNet weights
  for the backbone, through Paddle's own download cache) or a local ``.pdparams`` of
  paddle.vision's ``resnet18/34/50/101/152()`` or ``vgg16()``. Keys are mapped explicitly
  (``resnet_key_map``, ``vgg_key_map``); dilation and output stride change no kernel shape,
  so any ``output_stride`` takes the same weights. Returns a report of the loaded, missing
  (ours, not in the file), unexpected (in the file, not ours) and dropped (the 1000-class
  classifier) keys, and warns naming the missing and unexpected ones.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import paddle

from ..ops import fc_weight_to_conv
from .backbones.resnet import ResNet
from .backbones.vgg import VGG16, vgg_key_map

def resnet_key_map(key):
    """paddle.vision ResNet key -> ours: the same module names (conv1, bn1, layer1..4,
    downsample.0/1); the ImageNet classifier ``fc`` is dropped (None).

    Args:
        key: a state-dict key of ``paddle.vision.models.resnet*``.

    Returns:
        the course's key, or None for a key to skip.
    """
    return None if key.startswith("fc.") else key


def _backbone(model):
    bb = getattr(model, "backbone", None)
    if not isinstance(bb, (ResNet, VGG16)):
        kind = type(bb).__name__ if bb is not None else "no .backbone"
        raise ValueError(f"{type(model).__name__} has {kind}; ImageNet weights exist for "
                         "ResNet-18/34/50/101/152 and VGG16 backbones only (e.g. "
                         "deeplabv3plus needs backbone='resnet')")
    return bb


def imagenet_weights(backbone):
    """Local path of paddle.vision's ImageNet weights for ``backbone``, downloaded (with
    Paddle's md5 check) into Paddle's cache on first use."""
    from paddle.utils.download import get_weights_path_from_url

    if isinstance(backbone, ResNet):
        from paddle.vision.models.resnet import model_urls
        name, width = f"resnet{backbone.depth}", backbone.conv1.weight.shape[0]
    else:
        from paddle.vision.models.vgg import model_urls
        if backbone.batch_norm:
            raise ValueError("paddle.vision publishes ImageNet weights for vgg16 without batch "
                             "norm only; build the model with batch_norm=False")
        name, width = "vgg16", backbone.width
    if width != 64:
        raise ValueError(f"ImageNet {name} weights need width=64, the model has width={width}")
    url, md5 = model_urls[name]
    return get_weights_path_from_url(url, md5)


def load_backbone(model, source):
    """Load ImageNet weights into ``model.backbone``.

    Args:
        model: a model with a ``backbone`` (``ResNet`` or ``VGG16``).
        source: ``True`` (paddle.vision's weights via Paddle's download cache) or a path
            to a local state-dict file saved from paddle.vision.

    Returns:
        dict with ``path`` and the sorted key lists ``loaded`` / ``missing`` /
        ``unexpected`` / ``dropped`` (keys of ours, resp. of the file).

    Raises:
        FileNotFoundError: no such file. ValueError: nothing matches (another network's
        file) or a tensor's shape differs (the message names the key and both shapes).
    """
    bb = _backbone(model)
    path = imagenet_weights(bb) if source is True else os.fspath(source)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained backbone weights not found: {path}")
    key_map = resnet_key_map if isinstance(bb, ResNet) else vgg_key_map(bb.batch_norm)
    own = bb.state_dict()
    loaded, unexpected, dropped = {}, [], []
    for key, value in paddle.load(path).items():
        ours = key_map(key)
        if ours is None:
            dropped.append(key)
            continue
        if ours not in own:
            unexpected.append(key)
            continue
        value = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        want = list(own[ours].shape)
        if value.ndim == 2 and len(want) == 4:        # VGG's FC6/FC7 Linear -> conv kernel
            value = fc_weight_to_conv(value, in_shape=want[1:]) if np.prod(want) == value.size else value
        if list(value.shape) != want:
            raise ValueError(f"{path}: {key} has shape {list(value.shape)}, the backbone's "
                             f"{ours} expects {want} (ImageNet weights need width=64 and the "
                             "same depth / batch_norm)")
        loaded[ours] = value.astype(own[ours].numpy().dtype, copy=False)
    if not loaded:
        raise ValueError(f"{path}: no key matches the {type(bb).__name__} backbone; is it a "
                         "paddle.vision resnet/vgg16 state dict?")
    with warnings.catch_warnings():         # Paddle warns per absent key; we report them once
        warnings.filterwarnings("ignore", message="Skip loading for")
        bb.set_state_dict(loaded)
    missing = sorted(set(own) - set(loaded))
    if missing or unexpected:
        warnings.warn(f"{path}: backbone keys not in the file (left at their init): "
                      f"{missing[:20]}{' ...' if len(missing) > 20 else ''}; file keys not used: "
                      f"{unexpected[:20]}{' ...' if len(unexpected) > 20 else ''}", stacklevel=2)
    return dict(path=str(path), loaded=sorted(loaded), missing=missing,
                unexpected=sorted(unexpected), dropped=sorted(dropped))
