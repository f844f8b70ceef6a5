"""The export cache: programs exported once per model, kept between runs.

``export_cache()`` is the folder (``~/.cache/segcourse/exports``; ``$SEGCOURSE_EXPORT_CACHE``
moves it; safe to delete). ``model_fingerprint(model)`` names a model's programs there: a hash
of Paddle's build, the layer tree, the weights and the source of the layers and of ``common``,
so that changing any of these exports anew. ``ProgramCache`` is one model's folder on one
device: a program per input shape (``any`` for any size), the shapes each was checked at
(``verified.<device>.json``) and why one is unusable (``<shape>.<device>.failed``, delete to
retry).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import paddle

from ..data.download import user_cache
from .predictor import program_files

_COMMON = Path(__file__).resolve().parents[1]      # the package whose source a program depends on


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
    for path in sorted(_COMMON.rglob("*.py")):
        h.update(path.read_bytes())
    for name, value in model.state_dict().items():
        a = np.ascontiguousarray(value.numpy())
        h.update(f"{name} {a.dtype} {a.shape}\n".encode() + a.tobytes())
    return h.hexdigest()


def shape_name(shape):
    """File name of the program for ``shape``: ``"any"`` (None) or ``"1x3x64x64"``."""
    return "any" if shape is None else "x".join(map(str, shape))


def _write(target, text):
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


class ProgramCache:
    """The exported programs of one model on one device (see the module doc).

    Args:
        model: the model whose fingerprint names the folder.
        device: ``"cpu"`` or ``"gpu"`` (a program checked on one is not trusted on the other).
        cache_dir: the cache (default ``export_cache()``); False, a model without a
            fingerprint, or a folder that cannot be written: a temporary folder, removed
            with this object (``problem`` says why).
    """

    def __init__(self, model, device="cpu", cache_dir=None):
        self.model, self.device, self.cache_dir = model, device, cache_dir
        self.problem = None
        self._folder = self._tmp = None

    def folder(self):
        """The folder of this model's programs, created on first use."""
        if self._folder is None:
            key = None if self.cache_dir is False else model_fingerprint(self.model)
            if key is not None:
                root = export_cache() if self.cache_dir is None else Path(self.cache_dir)
                folder = root / f"{type(self.model).__name__}-{key}"
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    if os.access(folder, os.W_OK):
                        self._folder = folder
                    else:
                        self.problem = f"{folder} is not writable"
                except OSError as err:
                    self.problem = f"cannot create {folder}: {err}"
            if self._folder is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="segcourse_export_")
                self._folder = Path(self._tmp.name)
        return self._folder

    def failed_file(self, name):
        """Where the program ``name`` is recorded as unusable on this device."""
        return self.folder() / f"{name}.{self.device}.failed"

    def remember_failure(self, name, why):
        """Write why the program ``name`` is unusable, so later runs skip it."""
        _write(self.failed_file(name), why)

    def _verified_file(self):
        return self.folder() / f"verified.{self.device}.json"

    def verified(self):
        """``{input shape name: [program name, candidate label]}`` checked equal in earlier runs."""
        try:
            return json.loads(self._verified_file().read_text())
        except (OSError, ValueError):
            return {}

    def remember_verified(self, shape, name, label):
        """Record that the program ``name``, run as ``label``, was checked equal at ``shape``."""
        verified = self.verified()
        verified[shape_name(shape)] = [name, label]
        _write(self._verified_file(), json.dumps(verified, indent=1, sort_keys=True))

    def program(self, shape, export):
        """``(prefix, None)`` of the program for ``shape`` (None: any size), stored or written now
        by ``export(prefix)``, or ``(None, why)`` when it cannot be exported or failed before."""
        name = shape_name(shape)
        failed, final = self.failed_file(name), self.folder() / name
        if failed.is_file():
            return None, f"{failed.read_text()} (remembered in {failed}; delete it to retry)"
        try:
            program_files(final / "model")
            return final / "model", None
        except FileNotFoundError:
            pass
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
        except OSError as err:
            return None, f"export for {name}: cannot write to {final.parent}: {err}"
        try:
            export(tmp / "model")
        except Exception as err:                  # noqa: BLE001 (any tracing failure)
            shutil.rmtree(tmp, ignore_errors=True)
            why = f"export for {name}: {type(err).__name__}: {str(err)[:300]}"
            if not isinstance(err, OSError):      # a full disk may not be full next time
                self.remember_failure(name, why)
            return None, why
        try:
            tmp.rename(final)                     # atomic: readers see a whole program or none
        except OSError:                           # another process stored it first
            shutil.rmtree(tmp, ignore_errors=True)
        return final / "model", None
