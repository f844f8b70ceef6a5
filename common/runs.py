"""A run of ``python -m common.train``: its settings (the option table, the command line and
``--config`` merged, the checks that need no data) and its folder (``--out``: which files
belong to a run, the check that refuses another run's folder, the metrics log). Light on
purpose: no Paddle, so the command answers ``--help`` and refuses bad settings at once;
``common.training`` does the run itself.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dataclasses

from .options import (DATA_OPTIONS, DEVICE_OPTION, Option, OptionError, build_parser,
                      choice_of, key_values, load_config, non_negative_float, non_negative_int,
                      positive_float, positive_int, resolve, scale_range, size_hw,
                      sliding_window)

PROG = "python -m common.train"
DESCRIPTION = "Train a segmentation model of the course on your own images or a public dataset."
DEFAULT_ITERS = 5000

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



# ------------------------------------------------------------------ the settings
def parse(argv=None):
    """``(settings, given)`` from the command line and ``--config`` (``resolve``)."""
    return resolve(build_parser(PROG, DESCRIPTION, OPTIONS, EPILOG), OPTIONS, argv)


def _resume_settings(folder, settings, given):
    """The run's saved settings, with the options the user gave; refuses a change that
    would make the resumed run end differently from one never stopped."""
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
