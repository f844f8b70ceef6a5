"""ImageNet backbones, saving a model to rebuild it by name, and export for Paddle Inference.

- ``load_backbone(model, source)``: ``source`` is ``True`` (paddle.vision's ImageNet weights
  for the backbone, through Paddle's own download cache) or a local ``.pdparams`` of
  paddle.vision's ``resnet18/34/50/101/152()`` or ``vgg16()``. Keys are mapped explicitly
  (``resnet_key_map``, ``vgg_key_map``); dilation and output stride change no kernel shape,
  so any ``output_stride`` takes the same weights. Returns a report of the loaded, missing
  (ours, not in the file), unexpected (in the file, not ours) and dropped (the 1000-class
  classifier) keys, and warns naming the missing and unexpected ones.
- ``save_pretrained(model, folder)`` / ``load_pretrained(folder)``: weights plus a
  ``config.json`` with the ``build_model`` name, ``num_classes`` and kwargs.
- ``export_inference(model, path, input_spec, image_shape, fold_bn)``: ``paddle.jit.save`` of
  the eval-mode model (optionally batch norm folded, for one input shape); the fast
  inference path built on it is ``common.deploy``.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import paddle

from .backbones.resnet import ResNet
from .backbones.vgg import VGG16, vgg_key_map

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.pdparams"


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
    from ..ops import fc_weight_to_conv

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


# ------------------------------------------------------------ save / rebuild
def build_to_load(name, num_classes, **kwargs):
    """``build_model`` without drawing random initial weights (``paddle.LazyGuard``), for a
    model whose every weight is loaded right after with ``set_weights_exactly``: DeepLabV3+
    builds in 0.2 s instead of 1.6 s. Models whose constructor sets weights itself (FCN's
    bilinear upsampling, zero-initialised heads) cannot be built lazily and are built as usual.

    Args:
        name, num_classes, **kwargs: as for ``build_model``.

    Returns:
        The model; lazily built parameters hold no values until a state dict is set.
    """
    from . import build_model

    try:
        with paddle.LazyGuard():
            return build_model(name, num_classes, **kwargs)
    except Exception:                             # noqa: BLE001 (a constructor's set_value)
        return build_model(name, num_classes, **kwargs)


def set_weights_exactly(model, state, source):
    """Load ``state`` into ``model`` when its keys are exactly the model's; otherwise raise
    naming ``source`` and the first missing and unexpected keys (Paddle would only warn)."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"{source} does not fit the model: missing {missing[:10]}, "
                         f"unexpected {unexpected[:10]}")
    model.set_state_dict(state)


def save_float16(state, path):
    """Write a state dict with its float32 entries as float16 (course weights: half the size).

    Args:
        state: {name: Tensor or array}, e.g. ``model.state_dict()``.
        path: the ``.pdparams`` file to write.
    """
    half = {}
    for k, v in state.items():
        a = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
        half[k] = paddle.to_tensor(a.astype(np.float16) if a.dtype == np.float32 else a)
    paddle.save(half, str(path))


def load_float16(model, path, command):
    """Load weights written by ``save_float16`` into ``model`` as float32, keys exactly the model's.

    Args:
        model: the freshly built model.
        path: the ``.pdparams`` file.
        command: the command that writes the file, named in the error when it is missing.
    Returns:
        ``model``, in eval mode.
    Raises:
        FileNotFoundError: naming ``path`` and ``command``.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: run `{command}`")
    state = {k: v.astype("float32") if v.dtype == paddle.float16 else v for k, v in paddle.load(str(path)).items()}
    set_weights_exactly(model, state, path)
    model.eval()
    return model


def build_config(model):
    """The ``{"name", "num_classes", "kwargs"}`` that ``build_model`` recorded."""
    cfg = getattr(model, "_build_config", None)
    if cfg is None:
        raise ValueError(f"{type(model).__name__} was not made by build_model, so it cannot "
                         "be rebuilt by name; build it with common.models.build_model")
    return cfg


def save_pretrained(model, folder, **extra):
    """Save ``model`` (made by ``build_model``) so ``load_pretrained(folder)`` rebuilds it.

    Args:
        model: a model from ``build_model``.
        folder: created if needed; gets ``model.pdparams`` and ``config.json``.
        **extra: JSON-serialisable metadata stored in the config (e.g. ``classes``,
            ``palette``, ``window``); ``load_pretrained`` returns it in ``model.config``.

    Returns:
        Path of the folder.
    """
    cfg = build_config(model)
    kwargs = {k: v for k, v in cfg["kwargs"].items() if k != "pretrained"}   # weights are saved
    config = dict(name=cfg["name"], num_classes=cfg["num_classes"], kwargs=kwargs, **extra)
    try:
        text = json.dumps(config, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else _no_json(o))
    except TypeError as err:
        raise TypeError(f"cannot save the config of {cfg['name']}: {err}") from err
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paddle.save(model.state_dict(), str(folder / WEIGHTS_NAME))
    (folder / CONFIG_NAME).write_text(text)
    return folder


def _no_json(o):
    raise TypeError(f"{o!r} ({type(o).__name__}) is not JSON-serialisable; pass build "
                    "kwargs that are numbers, strings, lists or dicts")


def load_pretrained(folder):
    """Rebuild a model saved by ``save_pretrained`` and load its weights (eval mode).

    Args:
        folder: the folder ``save_pretrained`` wrote (config and weights files).

    Returns:
        The model; ``model.config`` is the saved config (name, num_classes, kwargs, extras).
    """
    folder = Path(folder)
    cfg_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    for p in (cfg_path, weights):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found (expected a folder written by save_pretrained)")
    try:
        config = json.loads(cfg_path.read_text())
        name, num_classes, kwargs = config["name"], config["num_classes"], config.get("kwargs", {})
    except (ValueError, KeyError) as err:
        raise ValueError(f"{cfg_path}: not a save_pretrained config ({err!r})") from err
    model = build_to_load(name, num_classes, **kwargs)
    set_weights_exactly(model, paddle.load(str(weights)), f"{weights} (for {name} built from {cfg_path})")
    model.config = config
    model.eval()
    return model


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
            (``common.deploy.fold_batchnorm``, on a copy; ``model`` is not changed).

    Returns:
        ``path``; load with ``paddle.jit.load(path)`` or ``common.deploy.create_predictor``.
    """
    if input_spec is None:
        shape = list(image_shape) if image_shape is not None else [None, 3, None, None]
        if len(shape) != 4:
            raise ValueError(f"image_shape must be (N, C, H, W), got {image_shape!r}")
        input_spec = [paddle.static.InputSpec(shape, "float32", "image")]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if fold_bn:
        from ..deploy import fold_batchnorm

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
