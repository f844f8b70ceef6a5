"""``FastModel``: a model run by one of four engines, each checked against the model itself.

``dynamic`` (as is), ``folded`` (batch norm folded, dygraph), ``static`` (``paddle.jit.load``
of the exported program) or ``inference`` (Paddle Inference). The exported engines trace the
BN-folded model once for any input size where it traces so, else once per input shape (U-Net's
mirror padding and FCN's crops are computed from the size in Python), keep the programs in the
export cache (``ProgramCache``), and check each against the dynamic model on the first input of
each shape, so that a program whose trace baked in one size is never used for another.
"""
from __future__ import annotations

import warnings

import paddle
import paddle.nn as nn

from .cache import ProgramCache, shape_name
from .fold import fold_batchnorm, rel_diff, tensors, without_sync_bn
from .predictor import PredictorLayer, create_predictor, export_inference

ENGINES = ("dynamic", "folded", "static", "inference")


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
        self.folded = self._reference = None
        # _any_size: the any-size program's loaded predictors, False once it is not usable
        self._programs, self.notes, self.rtol, self._any_size = {}, {}, rtol, {}
        self.cache = ProgramCache(model, device, cache_dir)
        self.eval()

    def _folded(self, x):
        if self.folded is None:
            self.folded = fold_batchnorm(self.dynamic, example=x[:1])
        return self.folded

    def _expected(self, x):
        """The dynamic model's outputs on ``x`` (SyncBatchNorm as BatchNorm: no CPU kernel)."""
        if self._reference is None:
            sync = any(isinstance(layer, nn.SyncBatchNorm) for layer in self.dynamic.sublayers())
            self._reference = without_sync_bn(self.dynamic) if sync else self.dynamic
            self._reference.eval()
        with paddle.no_grad():
            return [t.numpy() for t in tensors(self._reference(x))]

    def program_folder(self):
        """The folder of this model's exported programs (see ``cache_dir``); a temporary one
        when the model has no fingerprint or the cache cannot be written (``notes["cache"]``
        says why)."""
        folder = self.cache.folder()
        if self.cache.problem:
            self.notes["cache"] = [self.cache.problem]
        return folder

    def _stored(self, x, shape):
        """``ProgramCache.program`` for ``shape``: the BN-folded model exported on first use."""
        self.program_folder()
        return self.cache.program(shape, lambda prefix: export_inference(self._folded(x), prefix,
                                                                         image_shape=shape))

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
                err = rel_diff([t.numpy() for t in tensors(out)], want)
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
            self.cache.remember_failure(shape_name(shape), "; ".join(problems[before:]))
        return found

    def _trusted(self, x, key):
        """(program, its output on ``x``) of the program an earlier run checked equal at this
        input shape, or None (not checked before, gone, or it fails to load now)."""
        name, label = self.cache.verified().get(shape_name(key), (None, None))
        if name is None or self.cache.failed_file(name).is_file():
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
                self.cache.remember_verified(key, "any", label)
        if prog is None:
            prog, label, out = self._checked(x, key, want, problems, {})
            if prog is not None:
                self.cache.remember_verified(key, shape_name(key), label)
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


def fast_model(model, engine="inference", **kwargs):
    """``FastModel(model, engine, **kwargs)``; see its doc. ``engine="dynamic"`` returns
    ``model`` itself."""
    return model if engine == "dynamic" else FastModel(model, engine, **kwargs)
