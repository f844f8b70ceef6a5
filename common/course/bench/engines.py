"""The fast inference engines timed: ``common.deploy``'s engines against each other, and whole
``python -m common.predict`` runs.

- ``bench_engines``: seconds per forward of each engine on the same model and input,
  interleaved (A B C D A B C D ...), so machine load hits them alike; ``--clock cpu`` counts
  the process's CPU time, steadier when other jobs share the cores.
- ``bench_cli``: seconds of whole prediction CLI runs on four photos, Python's start included:
  ``dynamic``, ``inference`` on an empty export cache and ``inference`` again.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import paddle
import skimage.data

from common.deploy import ENGINES, fast_model
from common.models import build_model, save_pretrained

from .throughput import BENCH_MODELS, SCENES


def bench_engines(models=None, sizes=(96, 128, 256), batches=(1, 4), repeats=7, steps=3,
                  engines=ENGINES, num_classes=SCENES.num_classes, out=print, clock="wall"):
    """Seconds per forward of each engine, interleaved (A B C D A B C D ...).

    Each repeat times ``steps`` forwards of every engine in turn, so machine load hits them
    alike; the first call of every engine (export, predictor creation) is warm-up and not
    timed. Outputs are checked equal to the dynamic model (see ``tests/lib/test_deploy.py``).

    Args:
        models: ``[(name, kwargs)]``; default the semantic models of ``BENCH_MODELS``
            ``deeplabv3``, ``deeplabv3plus``, ``pspnet``, ``unet``, ``fcn8s`` (CPU size).
        sizes, batches: input sizes (square) and batch sizes.
        repeats, steps: timed rounds, forwards per round.
        engines: subset of ``ENGINES``; the first is the reference of the speed-ups.
        out: printer of one line per (model, size, batch); None prints nothing.
        clock: ``"wall"`` (elapsed time) or ``"cpu"`` (this process's CPU time, all threads:
            the work done, less disturbed than elapsed time when other jobs share the cores;
            with more than one thread it also counts threads waiting in spin loops).

    Returns:
        list of dicts ``model, size, batch, <engine>: (min, median) s per image``,
        ``max_rel_diff`` (largest relative output difference to the dynamic model).
    """
    timer = {"wall": time.perf_counter, "cpu": time.process_time}[clock]
    if models is None:
        wanted = ("deeplabv3", "deeplabv3plus", "pspnet", "unet", "fcn8s")
        models = [(n, k) for n, k in BENCH_MODELS if n in wanted]
    rows = []
    for name, kwargs in models:
        paddle.seed(0)
        model = build_model(name, num_classes, **kwargs)
        model.eval()
        for size in sizes:
            for batch in batches:
                x = paddle.to_tensor(np.random.default_rng(0).standard_normal(
                    (batch, 3, size, size)).astype(np.float32))
                runs = {e: fast_model(model, e) for e in engines}
                with paddle.no_grad():
                    ref = model(x).numpy()
                    diff = 0.0
                    for f in runs.values():            # warm-up + equality
                        y = f(x).numpy()
                        diff = max(diff, float(np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-12)))
                    times = {e: [] for e in runs}
                    for _ in range(repeats):
                        for e, f in runs.items():
                            t = timer()
                            for _ in range(steps):
                                f(x).numpy()
                            times[e].append((timer() - t) / steps / batch)
                row = dict(model=name, size=size, batch=batch, max_rel_diff=diff,
                           **{e: (min(v), float(np.median(v))) for e, v in times.items()})
                rows.append(row)
                if out is not None:
                    base = row[engines[0]][1]
                    out(f"{name:14s} {size:4d}px b{batch}  " + "  ".join(
                        f"{e} {row[e][0] * 1e3:7.1f}/{row[e][1] * 1e3:7.1f} ms x{base / row[e][1]:4.2f}"
                        for e in engines) + f"  diff {diff:.1e}")
    return rows


CLI_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")   # scikit-image's, 300x451 to 512x512


def bench_cli(models=("deeplabv3plus", "unet"), repeats=2, num_classes=21, out=print):
    """Seconds of whole ``python -m common.predict`` runs on four photos, Python's start
    included: ``dynamic``, ``inference`` on an empty export cache (the first run of a model)
    and ``inference`` again (later runs), in turn, ``repeats`` rounds. Models are full size
    (``build_model`` defaults) with random weights: the speed does not depend on them.

    Args:
        models: ``build_model`` names. repeats: rounds. num_classes: of the models.
        out: printer of one line per model; None prints nothing.

    Returns:
        ``{model: {"dynamic" | "inference first run" | "inference later runs": [seconds]}}``.
    """
    results = {}
    with tempfile.TemporaryDirectory(prefix="segcourse_bench_cli_") as tmp:
        tmp = Path(tmp)
        photos = []
        for name in CLI_PHOTOS:
            photos.append(str(tmp / f"{name}.jpg"))
            cv2.imwrite(photos[-1], getattr(skimage.data, name)()[..., ::-1])
        for name in models:
            paddle.seed(0)
            save_pretrained(build_model(name, num_classes), tmp / name)
            runs = {"dynamic": [], "inference first run": [], "inference later runs": []}
            for r in range(repeats):
                cache = tmp / f"cache_{name}_{r}"           # empty: the first run exports
                for label, engine in (("dynamic", "dynamic"), ("inference first run", "inference"),
                                      ("inference later runs", "inference")):
                    env = dict(os.environ, SEGCOURSE_EXPORT_CACHE=str(cache), PYTHONWARNINGS="ignore")
                    t = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "common.predict", "--model", str(tmp / name),
                                    "--out", str(tmp / "out"), "--engine", engine, "--quiet", *photos],
                                   env=env, check=True, capture_output=True)
                    runs[label].append(time.perf_counter() - t)
            results[name] = runs
            if out is not None:
                out(f"{name:14s} " + "  ".join(f"{k} {min(v):5.1f}-{max(v):5.1f} s" for k, v in runs.items()))
    return results
