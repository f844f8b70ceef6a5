"""Ablation experiments: one thing changed, several seeds, one machine-readable results file each.

Each module ``common/course/experiments/<name>.py`` (not starting with ``_``) defines ``NAME = "<name>"``
and ``main(fast=False) -> dict`` that calls :func:`run`. ``make experiments`` (or
``python -m common.course.experiments [--fast] [NAME ...]``) runs them and writes ``results/<name>.json``;
notebooks read these with :func:`load` and show them with :func:`table` and :func:`plot`.

In FAST mode (``SEGCOURSE_FAST=1`` or ``fast=True``) results go to ``build/experiments-fast/`` so a
CI run never overwrites the committed full-size results (both folders of the course checkout,
``common.course.paths``).
"""
from __future__ import annotations

import importlib
import json
import math
import os
import pkgutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Mapping, Optional

import numpy as np

from common import runtime
from common.course.paths import checkout, checkout_folder
from common.course.timing import machine


def _fast(fast: Optional[bool]) -> bool:
    return runtime.is_fast() if fast is None else bool(fast)


def default_out_dir(fast: Optional[bool] = None) -> Path:
    """Where :func:`run` writes by default: the checkout's ``results/``, or ``build/experiments-fast/``
    in FAST mode."""
    return checkout() / "build" / "experiments-fast" if _fast(fast) else checkout_folder("results")


def code_version(root: Optional[Path] = None) -> str:
    """Git HEAD sha of ``root`` (default the course checkout), with ``+dirty`` when tracked files
    differ; ``unknown`` without git or checkout."""
    try:
        root = checkout() if root is None else root
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):     # FileNotFoundError: no checkout, no git
        return "unknown"
    return sha + ("+dirty" if dirty else "") if sha else "unknown"


def _summary(per_seed: Mapping[str, Mapping[str, float]]) -> tuple:
    metrics = list(next(iter(per_seed.values())).keys()) if per_seed else []
    mean, std = {}, {}
    for m in metrics:
        vals = np.array([float(r[m]) for r in per_seed.values()], dtype=np.float64)
        mean[m] = float(np.mean(vals))
        std[m] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0   # sample std over seeds
    return mean, std


def _nan_as(value, fill):
    """``value`` with every NaN (metrics of a class absent from the data) replaced by
    ``fill`` and, for ``fill=nan``, every None read back as NaN: standard JSON has no NaN."""
    if isinstance(value, dict):
        return {k: _nan_as(v, fill) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_as(v, fill) for v in value]
    if fill is None and isinstance(value, float) and math.isnan(value):
        return None
    if fill is not None and value is None:
        return fill
    return value


def _write_atomic(path: Path, data: dict) -> None:
    data = {**data, "variants": _nan_as(data["variants"], None)} if "variants" in data else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, allow_nan=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(name: str, variants: Mapping[str, Callable[[int], Mapping[str, float]]],
        seeds: Iterable[int] = (0, 1, 2), fast: Optional[bool] = None,
        out_dir: Optional[os.PathLike] = None, meta: Optional[dict] = None, verbose: bool = True) -> dict:
    """Run every (variant, seed) and write ``<out_dir>/<name>.json``.

    Args:
        name: experiment name (the file stem and the ``make experiments EXPERIMENTS=`` name).
        variants: ``{variant_name: fn(seed) -> {metric_name: float}}``; every variant must return
            the same metric names.
        seeds: the seeds each variant runs with.
        fast: FAST mode (tiny sizes); None reads ``SEGCOURSE_FAST``. Only recorded here and used
            to pick the default out dir: the variant functions choose their own sizes.
        out_dir: directory of the JSON file; default :func:`default_out_dir`.
        meta: free-form description stored with the results (sizes, what changed, ...).
        verbose: print one line per (variant, seed) as it finishes.

    Returns:
        The result dict that was written (see the module docstring and :func:`load`).
    """
    if not variants:
        raise ValueError(f"experiment {name!r}: no variants given")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError(f"experiment {name!r}: no seeds given")
    fast = _fast(fast)
    out = Path(out_dir) if out_dir is not None else default_out_dir(fast)
    t_all, where = time.perf_counter(), machine()
    results, seconds = {}, {}
    for vname, fn in variants.items():
        t0 = time.perf_counter()
        per_seed = {}
        for s in seeds:
            t1 = time.perf_counter()
            metrics = fn(s)
            if not isinstance(metrics, Mapping) or not metrics:
                raise TypeError(f"experiment {name!r}, variant {vname!r}, seed {s}: "
                                f"expected a non-empty dict of metrics, got {metrics!r}")
            per_seed[str(s)] = {str(k): float(v) for k, v in metrics.items()}
            if verbose:
                shown = ", ".join(f"{k} {v:.3f}" for k, v in list(per_seed[str(s)].items())[:4])
                print(f"  {name} | {vname} | seed {s}: {shown} ({time.perf_counter() - t1:.0f} s)", flush=True)
        keys = [set(r) for r in per_seed.values()]
        if any(k != keys[0] for k in keys):
            raise ValueError(f"experiment {name!r}, variant {vname!r}: seeds returned different metrics {keys}")
        mean, std = _summary(per_seed)
        results[vname] = {"per_seed": per_seed, "mean": mean, "std": std}
        seconds[vname] = round(time.perf_counter() - t0, 2)
    result = {
        "name": name,
        "command": f"make experiments EXPERIMENTS={name}" + (" (FAST)" if fast else ""),
        "code_version": code_version(),
        "seeds": seeds,
        "fast": fast,
        "seconds": {"total": round(time.perf_counter() - t_all, 2), "per_variant": seconds},
        "machine": dict(where, load_average_end=machine()["load_average"]),
        "variants": results,
        "meta": dict(meta or {}),
    }
    _write_atomic(out / f"{name}.json", result)
    return result


def load(name: str, results_dir: Optional[os.PathLike] = None) -> dict:
    """Read the results file of experiment ``name``.

    Args:
        name: experiment name.
        results_dir: directory holding ``<name>.json``; default ``results/`` of the checkout.

    Returns:
        The dict :func:`run` wrote.

    Raises:
        FileNotFoundError: naming the missing file and the command that writes it.
    """
    path = Path(results_dir if results_dir is not None else checkout_folder("results")) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results file {path}: run `make experiments EXPERIMENTS={name}` "
                                f"(or python -m common.course.experiments {name}) to write it")
    with open(path) as f:
        result = json.load(f)
    if "variants" in result:
        result["variants"] = _nan_as(result["variants"], float("nan"))
    return result


def _fmt(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def table(result: Mapping, metrics: Optional[Iterable[str]] = None) -> str:
    """A text table, one row per variant, each cell ``mean ± std (per-seed values)``.

    Args:
        result: a dict from :func:`run` or :func:`load`.
        metrics: metric names to show (default: all, in the order of the first variant).

    Returns:
        The table as a string (print it).
    """
    variants = result["variants"]
    if metrics is None:
        metrics = list(next(iter(variants.values()))["mean"].keys())
    metrics = list(metrics)
    seeds = [str(s) for s in result.get("seeds", [])]
    rows = [["variant"] + metrics]
    for vname, v in variants.items():
        order = seeds or list(v["per_seed"])
        row = [vname]
        for m in metrics:
            if m not in v["mean"]:
                raise KeyError(f"experiment {result.get('name')!r}: variant {vname!r} has no metric {m!r}")
            vals = ", ".join(_fmt(v["per_seed"][s][m]) for s in order if s in v["per_seed"])
            row.append(f"{_fmt(v['mean'][m])} ± {_fmt(v['std'][m])} ({vals})")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    head = f"{result.get('name', '')}: mean ± std over seeds {result.get('seeds')} (per-seed values)"
    return head + "\n" + "\n".join(lines)


def plot(result: Mapping, metric: str, ax=None):
    """Bars of the mean of ``metric`` per variant, with each seed's value as a dot and ± std.

    Args:
        result: a dict from :func:`run` or :func:`load`.
        metric: the metric to draw.
        ax: a matplotlib Axes (default: a new figure).

    Returns:
        The Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 1.3 * len(result["variants"]), 3))
    names = list(result["variants"])
    for i, vname in enumerate(names):
        v = result["variants"][vname]
        ax.bar(i, v["mean"][metric], yerr=v["std"][metric], color="C0", alpha=0.6, capsize=4)
        vals = [r[metric] for r in v["per_seed"].values()]
        ax.plot(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, "o", color="k", ms=4)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel(metric)
    ax.set_title(f"{result.get('name', '')}: {metric} (bars: mean ± std; dots: seeds)", fontsize=9)
    return ax


def available() -> list:
    """Names of the experiment modules in this package (sorted)."""
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def get(name: str):
    """Import and return the experiment module ``name`` (it has ``NAME`` and ``main(fast=False)``)."""
    names = available()
    if name not in names:
        raise KeyError(f"no experiment {name!r} in common/course/experiments/ "
                       f"(available: {', '.join(names) or 'none'})")
    mod = importlib.import_module(f"common.course.experiments.{name}")
    if getattr(mod, "NAME", None) != name or not callable(getattr(mod, "main", None)):
        raise TypeError(f"common/course/experiments/{name}.py must define NAME = {name!r} and main(fast=False)")
    return mod
