"""Train a segmentation model of the course on your own images or a public dataset.

    python -m common.train --dataset folder --root my_set --num-classes 3 --out runs/mine

trains DeepLab V3+ (or any semantic model of ``common.models``) on ``my_set/train`` and
scores it on ``my_set/val``. The run folder ``--out`` receives:

- ``checkpoint.pdckpt``: weights, optimiser, iteration; ``--resume`` continues the run
  from it and ends with the weights of a run never stopped;
- ``best_model/`` (best validation mIoU) and, at the end, ``final_model/``: folders
  ``python -m common.predict --model`` and ``python -m common.evaluate --model`` take;
- ``metrics.jsonl`` (one JSON line per evaluation: loss, mIoU, mAcc, per-class IoU),
  ``curves.png`` (loss and mIoU), ``config.yaml`` (the settings, reusable with
  ``--config``) and ``run.json`` (processes, Paddle version, command).

Every input is checked before the first step: the dataset layout, every label against its
image and the class count, the crop against the image sizes, the model's output, and the
run folder (never overwritten unless ``--overwrite``).

Several GPUs (or machines) run through Paddle's own launcher, one process per GPU, with
this file as the script (the launcher takes a file, not ``-m``):

    python -m paddle.distributed.launch --gpus 0,1,2,3 common/train.py ...same options...

Each process trains on its share of every global batch (``--batch-size`` counts all
processes), BatchNorm statistics are those of the global batch (``common.distributed``),
and only the first process (rank 0) evaluates, logs and writes files.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:     # run as a file, as the launcher does
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    __package__ = "common"                          # PEP 366: the relative imports below work
    import common  # noqa: F401  (before Paddle loads: its CPU threads, its notices silenced)

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time

import numpy as np
import paddle
import paddle.distributed as dist

from .engine import Trainer, poly_lr
from .evaluate import format_scores, json_float
from .options import (DATA_OPTIONS, DEVICE_OPTION, Option, OptionError, build_parser,
                      choice_of, config_text, key_values, non_negative_float, non_negative_int,
                      open_split, positive_float, positive_int, resolve, run_cli, scale_range,
                      select_device, size_hw, sliding_window)

PROG = "python -m common.train"
DEFAULT_ITERS = 5000
PROBE_SIZE = 64          # side of the zero image the model is tried on before training

OPTIONS = DATA_OPTIONS + [
    Option("train_split", "train", "the split to train on (voc: train, trainval or train_aug; "
           "folder: the sub-folder of --root; filelist: <split>_list.txt)", str, group="data",
           metavar="NAME"),
    Option("val_split", "val", "the split scored during training; none = no validation (and "
           "no best_model/)", str, group="data", metavar="NAME"),
    Option("crop_size", (512, 512), "training crop, N or HEIGHT,WIDTH: each image is rescaled "
           "by a random factor from --scales, cropped (padded with ignored pixels where it is "
           "smaller) and flipped left-right half the time", size_hw, group="data", metavar="N"),
    Option("scales", (0.5, 2.0), "range of the random rescaling before the crop",
           scale_range, group="data", metavar="MIN,MAX"),

    Option("model", "deeplabv3plus", "the network: a semantic model of "
           "common.models.list_models() (fcn8s, unet, pspnet, deeplabv3, deeplabv3plus, ...)",
           str, group="model", metavar="NAME"),
    Option("model_args", {}, "the network's own arguments as KEY=VALUE words, e.g. "
           "backbone=resnet depth=50 output_stride=16 (see the model's docstring); default: "
           "the model's defaults (DeepLab V3+: Xception-65)", key_values, group="model",
           metavar="KEY=VALUE", many=True),
    Option("pretrained_backbone", None, "start the backbone from ImageNet weights: imagenet "
           "(paddle.vision's, downloaded once; ResNet-18..152 and VGG16 backbones) or a local "
           ".pdparams file; default: random initial weights", str, group="model",
           metavar="imagenet|FILE"),

    Option("iters", None, f"optimiser steps of the whole run (default {DEFAULT_ITERS}, unless "
           "--epochs is given)", positive_int, group="training", metavar="N"),
    Option("epochs", None, "or: passes over the training split (iters = epochs x images // "
           "batch)", positive_int, group="training", metavar="N"),
    Option("batch_size", 8, "images per step over all processes (the global batch): with N "
           "GPUs each takes batch/N", positive_int, group="training", metavar="B"),
    Option("lr", 0.01, "peak learning rate, for the global batch: keep it when you add GPUs "
           "with the same --batch-size; when you multiply the batch by k, multiply it by about "
           "k (linear scaling rule) and add --warmup", positive_float, group="training",
           metavar="LR"),
    Option("schedule", "poly", "learning-rate decay: poly = lr x (1 - it/iters)^0.9, down to 0 "
           "at the end (the DeepLab recipe); constant = no decay", choice_of("poly", "constant"),
           ("poly", "constant"), "training"),
    Option("warmup", 0, "iterations of linear warm-up to the peak learning rate",
           non_negative_int, group="training", metavar="N"),
    Option("optimizer", "sgd", "sgd (momentum 0.9) or adam", choice_of("sgd", "adam"),
           ("sgd", "adam"), "training"),
    Option("weight_decay", 1e-4, "L2 weight decay", non_negative_float, group="training",
           metavar="W"),
    Option("amp", "auto", "mixed precision (float16 on a GPU): auto = on when training on a GPU",
           choice_of("auto", "on", "off"), ("auto", "on", "off"), "training"),
    Option("workers", 4, "data-loading processes per training process (0 = load in the "
           "training process)", non_negative_int, group="training", metavar="N"),
    Option("seed", 0, "seed of the initial weights, the batches and the augmentation",
           non_negative_int, group="training", metavar="S"),
    dataclasses.replace(DEVICE_OPTION, group="training"),

    Option("eval_every", None, "score the validation split every N iterations and at the end "
           "(default: 10 times per run)", positive_int, group="evaluation", metavar="N"),
    Option("eval_window", None, "score by sliding windows of this size (N or HEIGHT,WIDTH) "
           "instead of whole images: for images much larger than the crops (Cityscapes); "
           "default: whole images", size_hw, group="evaluation", metavar="N"),
    Option("eval_stride", None, "step between the windows (default: 2/3 of --eval-window)",
           size_hw, group="evaluation", metavar="N"),
    Option("eval_batch_size", 1, "images per evaluation pass (more than 1 only when the "
           "validation images share one size)", positive_int, group="evaluation", metavar="B"),

    Option("out", None, "the run folder (required): checkpoint.pdckpt, best_model/, final_model/ "
           "(for common.predict), metrics.jsonl, curves.png, config.yaml, run.json", str,
           group="output", metavar="DIR"),
    Option("resume", False, "continue the run in --out from its checkpoint, exactly where it "
           "stopped; its settings come from --out/config.yaml", flag=True, group="output",
           in_file=False),
    Option("overwrite", False, "replace the run in --out: its checkpoint, models and logs are "
           "deleted (a folder that holds other files is refused)", flag=True, group="output", in_file=False),
    Option("ckpt_every", None, "write the checkpoint every N iterations (default: at every "
           "evaluation)", positive_int, group="output", metavar="N"),
    Option("stop_at", None, "end this session at iteration N with a checkpoint, e.g. on a "
           "time-limited notebook server; continue later with --resume", positive_int,
           group="output", metavar="N", in_file=False),
    Option("dry_run", False, "check the data and the model, print the plan, and stop before "
           "training", flag=True, group="output", in_file=False),
]

# Settings a resumed run may change: where the run and its data are (moved folders), and
# where and how often it evaluates, saves or loads data; not the weights it ends with.
RESUMABLE = {"out", "root", "resume", "overwrite", "dry_run", "stop_at", "workers", "device",
             "eval_every", "eval_window", "eval_stride", "eval_batch_size", "ckpt_every"}

EPILOG = f"""\
examples:
  a folder of your own (my_set/train/images, my_set/train/labels, my_set/val/...):
    {PROG} --dataset folder --root my_set --num-classes 3 --class-names background,leaf,spot \\
        --model-args backbone=resnet depth=50 --pretrained-backbone imagenet --out runs/leaves
  continue it after a stop:       {PROG} --out runs/leaves --resume
  score it, predict with it:      python -m common.evaluate --model runs/leaves/best_model
                                  python -m common.predict --model runs/leaves/best_model --out masks photo.jpg
  4 GPUs (Paddle's launcher runs this file once per GPU; same options, same global batch):
    python -m paddle.distributed.launch --gpus 0,1,2,3 common/train.py --config run.yaml
  2 machines x 4 GPUs (run on each machine, the first one's address as --master):
    python -m paddle.distributed.launch --master 10.0.0.1:8090 --nnodes 2 --gpus 0,1,2,3 \\
        common/train.py --config run.yaml
"""


class StopSession(Exception):
    """``--stop-at`` reached: the checkpoint holds iteration ``args[0]``."""


# ------------------------------------------------------------------ the run folder
class RunFolder:
    """The files of one run in ``--out``; only these are ever deleted or replaced."""

    CONFIG, RUN, CHECKPOINT = "config.yaml", "run.json", "checkpoint.pdckpt"
    METRICS, CURVES, BEST, FINAL = "metrics.jsonl", "curves.png", "best_model", "final_model"
    NAMES = (CONFIG, RUN, CHECKPOINT, METRICS, CURVES, BEST, FINAL)

    def __init__(self, path):
        self.path = Path(path)

    def __truediv__(self, name):
        return self.path / name

    def ours(self, name):
        """A file of a run, or a temporary one of a write in progress (``checkpoint.pdckpt.
        XXXXXXXX.tmp``, ``.best_model.XXXX``)."""
        return any(name == n or name.startswith(n + ".") or name.startswith("." + n + ".")
                   for n in self.NAMES)

    def check(self, resume, overwrite):
        """Refuse an output folder that holds another run (unless ``resume`` or
        ``overwrite``), or anything not written by a run; read-only."""
        p = self.path
        if p.exists() and not p.is_dir():
            raise OptionError(f"--out {p} is a file, not a folder")
        entries = sorted(e.name for e in p.iterdir()) if p.is_dir() else []
        if resume:
            if overwrite:
                raise OptionError("--resume continues the run in --out, --overwrite replaces it: give one")
            for name in (self.CHECKPOINT, self.CONFIG):
                if not (p / name).is_file():
                    raise OptionError(f"--resume: {p / name} not found, so there is no run to "
                                      f"continue in {p} (start one without --resume)")
            return
        foreign = [n for n in entries if not self.ours(n)]
        if foreign:
            raise OptionError(f"--out {p} holds files that no run wrote ({', '.join(foreign[:5])}"
                              f"{' ...' if len(foreign) > 5 else ''}): choose a new or empty folder")
        if entries and not overwrite:
            raise OptionError(f"--out {p} holds another run ({', '.join(entries)}): pass --resume to "
                              "continue it, --overwrite to replace it, or choose another --out")

    def clear(self):
        """Delete the files of a previous run (``--overwrite``, after every check passed)."""
        if not self.path.is_dir():
            return
        for e in self.path.iterdir():
            if self.ours(e.name):
                shutil.rmtree(e) if e.is_dir() and not e.is_symlink() else e.unlink()

    def write_text(self, name, text):
        """Write ``name`` through a temporary file and a rename (never half-written)."""
        tmp = self.path / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.path / name)

    def metrics(self):
        """The evaluation records of ``metrics.jsonl``."""
        f = self.path / self.METRICS
        return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.is_file() else []

    def add_metrics(self, record):
        with open(self.path / self.METRICS, "a") as f:
            f.write(json.dumps(record) + "\n")

    def keep_metrics_until(self, it):
        """Drop the records after iteration ``it`` (evaluations a resumed run will redo)."""
        kept = [r for r in self.metrics() if r["iter"] <= it]
        self.write_text(self.METRICS, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    def write_model(self, name, model, **extra):
        """``save_pretrained`` into ``name/``, replacing the previous one only once the new
        one is complete."""
        from .models import save_pretrained

        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.path))
        save_pretrained(model, tmp, **extra)
        dest, old = self.path / name, self.path / f".{name}.old"
        if old.exists():
            shutil.rmtree(old)
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        if old.exists():
            shutil.rmtree(old)
        return dest

    def plot(self, history):
        """``curves.png``: training loss and validation mIoU (``viz.plot_history``)."""
        from matplotlib.figure import Figure

        from .viz import plot_history

        fig = Figure(figsize=(6, 3.5), dpi=100)
        ax = plot_history(history, fig.subplots())
        ax.set_title(f"{self.path.name}: iteration {history['iter'][-1] if history['iter'] else 0}")
        fig.tight_layout()
        tmp = self.path / f".{self.CURVES}.tmp"
        fig.savefig(tmp, format="png")
        os.replace(tmp, self.path / self.CURVES)


# ------------------------------------------------------------------ the trainer of a run
class RunTrainer(Trainer):
    """The course's ``Trainer`` plus what a run writes: a record per evaluation, the best
    model, the curves; the loss of the global batch under data parallel; ``--stop-at``;
    the schedule; evaluation by sliding windows. Only rank 0 is given validation data, so
    only it evaluates (eval-mode forward passes need no other process)."""

    def __init__(self, model, train, val, *, folder, schedule, stop_at, eval_kwargs,
                 eval_batch_size, extra, **kwargs):
        super().__init__(model, train, val, **kwargs)
        self.folder, self.schedule, self.stop_at = folder, schedule, stop_at
        self.eval_kwargs, self.eval_batch_size, self.extra = eval_kwargs, eval_batch_size, extra
        self.classes = list(getattr(train, "classes", range(self.num_classes)))
        self.best = None          # best validation mIoU so far

    def lr_at(self, it):
        return poly_lr(self.base_lr, it, self.iters, self.warmup,
                       power=0.0 if self.schedule == "constant" else 0.9)

    def train_step(self, images, labels):
        if self.it == self.stop_at:
            self.save(self.ckpt_path)
            raise StopSession(self.it)
        loss = super().train_step(images, labels)
        if self.world > 1:      # each process has the loss of its share: report their mean
            t = paddle.to_tensor([loss], "float64")
            dist.all_reduce(t)
            loss = t.item() / self.world
        return loss

    def evaluate(self, data=None, batch_size=None, **predict_kwargs):
        scores = super().evaluate(data, batch_size or self.eval_batch_size,
                                  **{**self.eval_kwargs, **predict_kwargs})
        if data is None:        # the evaluation of fit()'s schedule
            self.record(scores)
        return scores

    def record(self, scores):
        """Log one evaluation (metrics.jsonl, a line above the bar, curves.png) and keep
        the model if it is the best so far."""
        from tqdm.auto import tqdm

        h = self.history
        since = h["eval_iter"][-1] if h["eval_iter"] else 0
        losses = [v for i, v in zip(h["iter"], h["loss"]) if i > since]
        miou = scores["miou"]
        better = not math.isnan(miou) and (self.best is None or miou > self.best)
        if better:
            self.best = miou
            self.folder.write_model(RunFolder.BEST, self.model, **self.extra, iter=self.it,
                                    miou=json_float(miou))
        rec = dict(iter=self.it, epoch=round(self.it * self.batch_size / len(self.train_data), 3),
                   loss=json_float(np.mean(losses)) if losses else None,
                   lr=json_float(self.lr_at(self.it - 1)), miou=json_float(miou),
                   macc=json_float(scores["macc"]), pixel_acc=json_float(scores["pixel_acc"]),
                   iou={c: json_float(v) for c, v in zip(self.classes, scores["iou"])},
                   acc={c: json_float(v) for c, v in zip(self.classes, scores["acc"])},
                   best_miou=None if self.best is None else json_float(self.best),
                   time=time.strftime("%Y-%m-%d %H:%M:%S"))
        self.folder.add_metrics(rec)
        self.folder.plot(dict(h, eval_iter=h["eval_iter"] + [self.it], miou=h["miou"] + [miou]))
        loss = "n/a" if rec["loss"] is None else f"{rec['loss']:.4f}"
        tqdm.write(f"iter {self.it}/{self.iters}  loss {loss}  val mIoU {miou:.4f}  "
                   f"mAcc {scores['macc']:.4f}"
                   + (f"  (best so far -> {self.folder / RunFolder.BEST})" if better else
                      f"  (best {self.best:.4f})" if self.best is not None else ""))


# ------------------------------------------------------------------ checks and plan
def parse(argv=None):
    """``(settings, given)`` from the command line and ``--config`` (``resolve``)."""
    return resolve(build_parser(PROG, __doc__.split("\n\n")[0], OPTIONS, EPILOG), OPTIONS, argv)


def _resume_settings(folder, settings, given):
    """The run's saved settings, with the options the user gave; refuses a change that
    would make the resumed run end differently from one never stopped."""
    from .options import load_config

    saved = {o.name: o.default for o in OPTIONS}
    saved.update(load_config(folder / RunFolder.CONFIG, OPTIONS))
    changed = [n for n in sorted(given - RESUMABLE) if settings[n] != saved[n]]
    if changed:
        flags = ", ".join(f"--{n.replace('_', '-')} {settings[n]!r} (the run has {saved[n]!r})" for n in changed)
        raise OptionError(f"--resume: {flags}. A resumed run keeps the settings of "
                          f"{folder / RunFolder.CONFIG}, so that it ends as if never stopped; drop "
                          "these options, or start a new run (another --out, or --overwrite)")
    saved.update({n: settings[n] for n in given & RESUMABLE})
    return saved


def _check_settings(s):
    if not s["out"]:
        raise OptionError("--out is required: the folder the run writes to")
    if s["iters"] is not None and s["epochs"] is not None:
        raise OptionError(f"give --iters or --epochs, not both (got --iters {s['iters']} --epochs {s['epochs']})")
    window = sliding_window(s["eval_window"], s["eval_stride"], ("--eval-window", "--eval-stride"))
    s["eval_stride"] = window[1] if window else None


def _check_data(s, train, val):
    """Every label read and checked against its image and the classes, before training;
    the crop against the image sizes."""
    from .data.catalog import survey

    t = survey(train, progress=True, desc=f"checking {s['train_split']}")
    h, w = s["crop_size"]
    top = s["scales"][1]
    fits = (t.sizes[:, 0] * top >= h) & (t.sizes[:, 1] * top >= w)
    if not fits.any():
        big = t.sizes[np.argmax(t.sizes.prod(1))]
        raise OptionError(f"--crop-size {h},{w} is larger than every training image, even after the "
                          f"largest rescaling (--scales {s['scales'][0]},{top}): the largest image is "
                          f"{big[1]}x{big[0]} (width x height), {round(big[1] * top)}x{round(big[0] * top)} "
                          f"rescaled; choose a crop of at most that size, or larger --scales")
    absent = t.absent()
    if absent:
        names = ", ".join(f"{k} ({train.classes[k]})" for k in absent[:10])
        warn(f"no pixel of the {s['train_split']} split is labelled with class {names}"
             f"{' ...' if len(absent) > 10 else ''}: the model cannot learn it. Is "
             f"--num-classes {train.num_classes} right?")
    tell(f"  data: {s['dataset']} {s['root']} | {s['train_split']}: {len(train)} images "
         f"(largest {t.sizes[:, 1].max()}x{t.sizes[:, 0].max()}, smallest "
         f"{t.sizes[:, 1].min()}x{t.sizes[:, 0].min()}), {train.num_classes} classes"
         + (f", {t.ignored / (t.ignored + t.class_pixels.sum()):.1%} pixels ignored"
            if t.class_pixels is not None else ""))
    if val is not None:
        v = survey(val, progress=True, desc=f"checking {s['val_split']}")
        if s["eval_batch_size"] > 1 and len(np.unique(v.sizes, axis=0)) > 1:
            raise OptionError(f"--eval-batch-size {s['eval_batch_size']} needs validation images of one "
                              f"size; the {s['val_split']} split has {len(np.unique(v.sizes, axis=0))} "
                              "sizes: use --eval-batch-size 1")
        tell(f"        {s['val_split']}: {len(val)} images")


def args_text(s):
    """``--model-args a=1 b=2 `` as typed (empty without model arguments)."""
    return f"--model-args {' '.join(f'{k}={v}' for k, v in s['model_args'].items())} " if s["model_args"] else ""


def _build_model(s, train, resume):
    """The network of ``--model`` / ``--model-args``, checked to be a semantic model with
    one output channel per class."""
    from .models import build_model, list_models

    if s["model"] not in list_models():
        raise OptionError(f"--model {s['model']!r} is not a model of the course; choose one of "
                          f"{', '.join(list_models())}")
    pretrained = s["pretrained_backbone"]
    if resume or pretrained is None:
        pretrained = None                   # a resumed run's weights come from its checkpoint
    elif pretrained == "imagenet":
        pretrained = True
    elif not Path(pretrained).is_file():
        raise OptionError(f"--pretrained-backbone: {pretrained} is neither 'imagenet' nor a file")
    paddle.seed(s["seed"])
    try:
        model = build_model(s["model"], train.num_classes, pretrained_backbone=pretrained, **s["model_args"])
    except TypeError as err:
        raise OptionError(f"{args_text(s).strip()}: {s['model']} does not take these arguments ({err})") from None
    except ValueError as err:
        raise OptionError(f"--model {s['model']} {args_text(s)}"
                          + (f"--pretrained-backbone {s['pretrained_backbone']}" if pretrained else "")
                          + f": {err}") from None
    model.eval()
    try:
        with paddle.no_grad():
            out = model(paddle.zeros([1, 3, PROBE_SIZE, PROBE_SIZE]))
    except Exception as err:        # noqa: BLE001 (any failure of the user's choice of model)
        raise OptionError(f"--model {s['model']} {args_text(s)}fails on a 1x3x{PROBE_SIZE}x{PROBE_SIZE} "
                          f"image: {type(err).__name__}: {err}") from None
    model.train()
    out = out[0] if isinstance(out, (list, tuple)) and out and isinstance(out[0], paddle.Tensor) else out
    if not isinstance(out, paddle.Tensor):
        raise OptionError(f"--model {s['model']} is an instance or panoptic model (its output is a "
                          f"{type(out).__name__} of detections or maps): common.train trains the semantic "
                          "models, whose output is one score map per class; the Day 6 notebooks train the others")
    if list(out.shape) != [1, train.num_classes, PROBE_SIZE, PROBE_SIZE]:
        raise OptionError(f"--model {s['model']} {args_text(s)}maps a 1x3x{PROBE_SIZE}x{PROBE_SIZE} image to "
                          f"{list(out.shape)}, not to one score map per class "
                          f"[1, {train.num_classes}, {PROBE_SIZE}, {PROBE_SIZE}]")
    return model


def tell(*lines):
    """Print on rank 0 only (every process runs this file)."""
    if dist.get_rank() == 0:
        print(*lines, flush=True)


def warn(text):
    """A warning on stderr, rank 0 only: the run goes on."""
    if dist.get_rank() == 0:
        print(f"warning: {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the command
def settings_of(argv=None):
    """The run's settings (command line, ``--config``, and for ``--resume`` the run's own)
    and its folder, checked; reads nothing but the run folder."""
    s, given = parse(argv)
    _check_settings(s)
    folder = RunFolder(s["out"])
    folder.check(s["resume"], s["overwrite"])
    if s["resume"]:
        s = _resume_settings(folder, s, given)
        _check_settings(s)
    return s, folder


def _start_folder(s, folder, world, device, argv):
    """Rank 0, once every check passed: a new run clears the folder (``--overwrite``) and
    writes its settings; every session records how it was started."""
    folder.path.mkdir(parents=True, exist_ok=True)
    if not s["resume"]:
        folder.clear()
        folder.write_text(RunFolder.CONFIG, config_text(
            s, OPTIONS, f"# the settings of this run; a new run with them: {PROG} --config FILE --out DIR\n"))
    elif (folder / RunFolder.RUN).is_file():
        started = json.loads((folder / RunFolder.RUN).read_text()).get("world_size", world)
        if started != world:
            warn(f"this run started on {started} processes and resumes on {world}: the same "
                 "global batches, but not bit-identical to a run never stopped")
    folder.write_text(RunFolder.RUN, json.dumps(dict(
        world_size=world, device=device, paddle=paddle.__version__,
        command=" ".join([PROG] + list(sys.argv[1:] if argv is None else argv))), indent=1) + "\n")


def main(argv=None):
    """Run the command.

    Args:
        argv: the arguments without the program name; None reads ``sys.argv``.

    Returns:
        the trainer (its ``model``, ``history``, ``it``), or None after ``--dry-run``.

    Raises:
        OptionError (a ValueError): a setting, the data, the model or the run folder
            cannot be used; the message names the option or file and what was expected.
    """
    from .data import train_transform

    s, folder = settings_of(argv)
    world, rank = dist.get_world_size(), dist.get_rank()    # from the launcher's environment
    if s["batch_size"] % world:
        raise OptionError(f"--batch-size {s['batch_size']} is the global batch; it must divide "
                          f"among the {world} processes")
    device = select_device(s["device"])
    if s["amp"] == "on" and device == "cpu":
        raise OptionError("--amp on needs a GPU (training here runs on the CPU); use --amp auto or off")
    amp = device == "gpu" if s["amp"] == "auto" else s["amp"] == "on"
    train = open_split(s, s["train_split"])
    train.transform = train_transform(s["crop_size"], s["scales"], train.ignore_index)
    val = None if s["val_split"].lower() == "none" else open_split(s, s["val_split"])
    steps_per_epoch = max(len(train) // s["batch_size"], 1)             # as Trainer(epochs=...)
    iters = s["iters"] or (s["epochs"] * steps_per_epoch if s["epochs"] else DEFAULT_ITERS)
    eval_every = s["eval_every"] or max(1, iters // 10)
    if s["stop_at"] is not None and s["stop_at"] >= iters:
        raise OptionError(f"--stop-at {s['stop_at']} is not before the end of the run ({iters} iterations)")

    tell(f"{PROG}: {s['model']} on {s['dataset']}, {iters} iterations -> {folder.path}")
    if rank == 0:
        _check_data(s, train, val)
    model = _build_model(s, train, s["resume"])
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    report = getattr(model, "pretrained_report", None)
    tell(f"  model: {s['model']} {args_text(s)}| {n_params / 1e6:.2f} M parameters"
         + (f", ImageNet backbone ({len(report['loaded'])} tensors loaded)" if report else ""))
    tell(f"  run: {iters} iterations x {s['batch_size']} images"
         + (f" ({s['batch_size'] // world} per process x {world})" if world > 1 else "")
         + f" = {iters * s['batch_size'] / len(train):.1f} epochs | {s['optimizer']} lr {s['lr']:g} "
         f"(global batch), {s['schedule']}" + (f", warm-up {s['warmup']}" if s["warmup"] else "")
         + f" | {device}{' AMP' if amp else ''} | evaluate every {eval_every}")
    if s["dry_run"]:
        tell("dry run: every check passed; nothing was trained or written")
        return None

    if world > 1:
        dist.init_parallel_env()
    if rank == 0:
        _start_folder(s, folder, world, device, argv)
    extra = dict(classes=list(train.classes), palette=np.asarray(train.palette).tolist(),
                 ignore_index=train.ignore_index, dataset=s["dataset"], root=str(Path(s["root"]).resolve()),
                 val_split=s["val_split"], crop_size=list(s["crop_size"]))
    window = dict(window=(s["eval_window"], s["eval_stride"])) if s["eval_window"] else {}
    trainer = RunTrainer(
        model, train, val if rank == 0 else None, folder=folder, schedule=s["schedule"],
        stop_at=s["stop_at"], eval_kwargs=window, eval_batch_size=s["eval_batch_size"], extra=extra,
        num_classes=train.num_classes, iters=iters, batch_size=s["batch_size"], lr=s["lr"],
        optimizer=s["optimizer"], weight_decay=s["weight_decay"], eval_every=eval_every,
        ckpt_path=folder / RunFolder.CHECKPOINT, ckpt_every=s["ckpt_every"] or eval_every, amp=amp,
        num_workers=s["workers"], seed=s["seed"], ignore_index=train.ignore_index, warmup=s["warmup"])
    if world > 1:
        tell(f"  {world} processes: BatchNorm statistics of the global batch ({trainer.sync_batchnorm}); "
             "rank 0 evaluates and writes")
    again = f"{PROG} --out {folder.path} --resume" + (
        " (through paddle.distributed.launch, as this run)" if world > 1 else "")
    if s["resume"]:
        trainer.resume(folder / RunFolder.CHECKPOINT)
        if s["stop_at"] is not None and s["stop_at"] <= trainer.it:
            raise OptionError(f"--stop-at {s['stop_at']}: the run is already at iteration {trainer.it}")
        if rank == 0:
            scored = [r["miou"] for r in folder.keep_metrics_until(trainer.it) if r.get("miou") is not None]
            trainer.best = max(scored) if scored else None
        tell(f"  resumed at iteration {trainer.it} of {iters}")
    try:
        trainer.fit()
    except StopSession as stop:
        tell(f"stopped at iteration {stop.args[0]} of {iters} (checkpoint {folder / RunFolder.CHECKPOINT}); "
             f"continue with: {again}")
        return trainer
    except KeyboardInterrupt:
        tell(f"\ninterrupted at iteration {trainer.it}; continue from the last checkpoint with: {again}")
        raise
    if rank == 0:
        final = folder.write_model(RunFolder.FINAL, trainer.model, **extra, iter=trainer.it)
        folder.plot(trainer.history)
        _summary(folder, final)
    return trainer


def _summary(folder, final):
    records = folder.metrics()
    if records:
        last = records[-1]
        per_class = {k: [np.nan if v is None else v for v in last[k].values()] for k in ("iou", "acc")}
        tell(format_scores(dict(last, **per_class), list(last["iou"]),
                           title=f"validation at iteration {last['iter']}"))
        best = max(records, key=lambda r: -1 if r["miou"] is None else r["miou"])
        tell(f"best val mIoU {best['miou']:.4f} at iteration {best['iter']} -> {folder / RunFolder.BEST}")
    tell(f"final model -> {final}\npredict with: python -m common.predict --model "
         f"{folder / (RunFolder.BEST if records else RunFolder.FINAL)} --out masks/ photo.jpg")


if __name__ == "__main__":
    run_cli(main, PROG)
