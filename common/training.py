"""The training run behind ``python -m common.train``: the data and the model checked, the
``Trainer`` of a run (a record per evaluation, the best model, the curves, ``--stop-at``), and
the models and curves it writes into the run folder. ``common.train`` parses and checks the
settings without Paddle (so ``--help`` is instant) and then calls ``run``.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import paddle
import paddle.distributed as dist
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from .data import train_transform
from .data.catalog import survey
from .engine import Trainer, poly_lr
from .evaluate import format_scores, json_float
from .models import build_model, list_models, save_pretrained
from .options import OptionError, config_text, open_split, select_device
from .runs import DEFAULT_ITERS, OPTIONS, PROG, RunFolder
from .viz import plot_history

PROBE_SIZE = 64          # side of the zero image the model is tried on before training


class StopSession(Exception):
    """``--stop-at`` reached: the checkpoint holds iteration ``args[0]``."""



def write_model(folder, name, model, **extra):
    """``save_pretrained`` into ``name/``, replacing the previous one only once the new
    one is complete."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder.path))
    save_pretrained(model, tmp, **extra)
    dest, old = folder.path / name, folder.path / f".{name}.old"
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    if old.exists():
        shutil.rmtree(old)
    return dest



def plot_curves(folder, history):
    """``curves.png``: training loss and validation mIoU (``viz.plot_history``)."""
    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = plot_history(history, fig.subplots())
    ax.set_title(f"{folder.path.name}: iteration {history['iter'][-1] if history['iter'] else 0}")
    fig.tight_layout()
    tmp = folder.path / f".{folder.CURVES}.tmp"
    fig.savefig(tmp, format="png")
    os.replace(tmp, folder.path / folder.CURVES)




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
        h = self.history
        since = h["eval_iter"][-1] if h["eval_iter"] else 0
        losses = [v for i, v in zip(h["iter"], h["loss"]) if i > since]
        miou = scores["miou"]
        better = not math.isnan(miou) and (self.best is None or miou > self.best)
        if better:
            self.best = miou
            write_model(self.folder, RunFolder.BEST, self.model, **self.extra, iter=self.it,
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
        plot_curves(self.folder, dict(h, eval_iter=h["eval_iter"] + [self.it], miou=h["miou"] + [miou]))
        loss = "n/a" if rec["loss"] is None else f"{rec['loss']:.4f}"
        tqdm.write(f"iter {self.it}/{self.iters}  loss {loss}  val mIoU {miou:.4f}  "
                   f"mAcc {scores['macc']:.4f}"
                   + (f"  (best so far -> {self.folder / RunFolder.BEST})" if better else
                      f"  (best {self.best:.4f})" if self.best is not None else ""))


# ------------------------------------------------------------------ checks
def _check_data(s, train, val):
    """Every label read and checked against its image and the classes, before training;
    the crop against the image sizes."""
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


# ------------------------------------------------------------------ the run
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


def run(s, folder, argv=None):
    """Train the run of settings ``s`` (checked by ``common.train.settings_of``) in ``folder``.

    Args:
        s: the settings.
        folder: the ``RunFolder`` of ``--out``.
        argv: the command's arguments, recorded in ``run.json``.

    Returns:
        the trainer (its ``model``, ``history``, ``it``), or None after ``--dry-run``.

    Raises:
        OptionError (a ValueError): the data, the model or the run cannot be used; the message
            names the option or file and what was expected.
    """
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
        final = write_model(folder, RunFolder.FINAL, trainer.model, **extra, iter=trainer.it)
        plot_curves(folder, trainer.history)
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


