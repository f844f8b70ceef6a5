"""Time to a good model: the course's ``Trainer`` and recipe against PaddleSeg 2.8's own trainer
and recipe (issue 25), part of ``make bench-paddleseg``.

Training steps cost the same on both sides (same kernels: ``bench --paddleseg``); what a user
feels is the time until the model is good. Each run trains one architecture twice from the same
initial weights (``paddle.seed(seed)``), on the same training scenes and batch size, and scores
both on the same held-out scenes with the same code (``common.inference.evaluate``) every
``eval_every`` steps:

- **course**: ``common.engine.Trainer`` with the recipe of ``common.course.weights.recipes.RECIPES[name]``
  (its optimizer, learning rate, poly schedule, warm-up, class-weighted loss, steps);
- **paddleseg**: ``paddleseg.core.train`` (PaddleSeg 2.8's trainer) with the standard recipe of
  the architecture's PaddleSeg configs, built by PaddleSeg's own components
  (``paddleseg.optimizers.Momentum``, ``paddleseg.models.losses.CrossEntropyLoss``) and the same
  number of steps for its poly schedule. The configs (PaddleSeg repository, ``configs/``):
  ``unet/unet_cityscapes_1024x512_160k.yml`` and ``deeplabv3p/deeplabv3p_resnet50_os8_cityscapes_
  1024x512_80k.yml``, both on ``_base_/cityscapes.yml``: SGD with momentum 0.9, weight decay 4e-5,
  ``PolynomialDecay`` from 0.01 to 0 with power 0.9, ``CrossEntropyLoss`` (coefficient 1). The
  pretrained ImageNet backbone of the DeepLabV3+ config is left out on both sides (none here).

``--size course`` trains the course's model of the recipe on both sides (the same network in
both trainers); ``--size full`` trains the ``bench.PADDLESEG_PAIRS`` pair at the papers' size
(ours against PaddleSeg's own model class, equal parameter counts), far slower on a CPU.

Interleaved: the two sides run in two processes that hand a baton to each other at every
evaluation, so they take turns in ``eval_every``-step chunks and a busy machine slows both alike.
Each side's clock (wall and process CPU seconds) runs only while it trains: evaluation, PaddleSeg's
checkpoint writes (it saves at every evaluation) and the wait for the baton are excluded. A side
stops when its held-out mIoU first reaches ``--target`` (or at the end of its schedule).

Run: ``python -m common.course.bench time-to-target --models unet deeplabv3plus --seeds 0 1 2
--target 0.7 [--eval-every 50] [--out results/time_to_target.json]`` (needs paddleseg
importable: ``make bench-paddleseg`` installs it into ``.bench-paddleseg/``).
"""
from __future__ import annotations

import argparse
import json
import importlib
import multiprocessing as mp
import os
import tempfile
import time
import traceback

import numpy as np
import paddle

from common.course.weights import recipes
from common.engine import Trainer
from common.inference import evaluate
from common.models import build_model

from .paddleseg import PADDLESEG_PAIRS, build_paddleseg

K = 7   # the synthetic scenes' classes
SIDES = ("course", "paddleseg")
# PaddleSeg 2.8's standard semantic-segmentation recipe (configs/_base_/cityscapes.yml, the base of
# configs/unet/unet_cityscapes_1024x512_160k.yml and configs/deeplabv3p/*_cityscapes_*.yml).
PADDLESEG_RECIPE = dict(optimizer="Momentum", momentum=0.9, weight_decay=4e-5, learning_rate=0.01,
                        end_lr=0.0, power=0.9, loss="CrossEntropyLoss", coef=1.0, aux_coef=0.4)
PADDLESEG_CONFIGS = {
    "unet": "configs/unet/unet_cityscapes_1024x512_160k.yml",
    "deeplabv3plus": "configs/deeplabv3p/deeplabv3p_resnet50_os8_cityscapes_1024x512_80k.yml",
}


class Clock:
    """Wall and process-CPU seconds accumulated between ``start()`` and ``pause()``."""

    def __init__(self):
        self.wall = self.cpu = 0.0
        self._t = None

    def start(self):
        self._t = (time.perf_counter(), time.process_time())

    def pause(self):
        if self._t is not None:
            self.wall += time.perf_counter() - self._t[0]
            self.cpu += time.process_time() - self._t[1]
            self._t = None


class _Reached(Exception):
    """Raised from the evaluation hook to end a side's training at the target."""


class _AsList(paddle.nn.Layer):
    """Wraps a model so that its training output is a list (PaddleSeg's trainer zips it with
    its loss list)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x)
        return list(out) if isinstance(out, (list, tuple)) else [out]


class _PaddleSegItems:
    """The course's training scenes as PaddleSeg dataset items (``{"img", "label"}``); each read
    draws a new augmentation seed, as PaddleSeg's transforms draw from a global generator."""

    def __init__(self, data, seed):
        self.data, self.seed, self.reads = data, seed, 0

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        self.reads += 1
        image, label = self.data[(int(i), self.seed * 1_000_003 + self.reads)]
        return dict(img=image, label=label)


def _models(name, size, seed):
    """(course model, peer model) with equal initial weights where the architecture is shared."""

    if size == "course":
        paddle.seed(seed)
        ours = build_model(name, K, **recipes.RECIPES[name]["model"])
        paddle.seed(seed)
        return ours, build_model(name, K, **recipes.RECIPES[name]["model"])
    kwargs, ctor = next((kw, c) for n, kw, c in PADDLESEG_PAIRS if n == name)
    paddle.seed(seed)
    ours = build_model(name, K, **kwargs)
    paddle.seed(seed)
    return ours, build_paddleseg(ctor, K)


def _side(side, cfg, go, other_go, done, other_done, results):
    """One side of a run, in its own process: train until the target (or the schedule's end),
    evaluating every ``eval_every`` steps and handing the baton to the other side after each."""
    name, seed, every, target = cfg["name"], cfg["seed"], cfg["eval_every"], cfg["target"]
    recipe = recipes.RECIPES[name]
    iters, batch = cfg["iters"] or recipe["iters"], cfg["batch"] or recipe["batch_size"]
    train, val = recipes.splits(name)
    ours, peer = _models(name, cfg["size"], seed)
    model = ours if side == "course" else peer
    clock, log = Clock(), []

    def handoff():
        go.clear()
        other_go.set()
        if not other_done.is_set():
            go.wait()

    def hook(it):
        clock.pause()
        s = evaluate(model, val, K, batch_size=16)
        log.append(dict(it=it, wall=clock.wall, cpu=clock.cpu, miou=float(s["miou"]),
                        iou=[float(v) for v in s["iou"]]))
        if s["miou"] >= target:
            raise _Reached
        handoff()
        clock.start()
        return s

    go.wait()
    error = None
    try:
        if side == "course":
            extra = {k: recipe[k] for k in ("warmup", "clip_norm") if recipe.get(k)}
            trainer = Trainer(model, train, val, iters=iters, batch_size=batch, lr=recipe["lr"],
                              optimizer=recipe["optimizer"], seed=seed, progress=False, eval_every=every,
                              loss_fn=recipes.recipe_loss(name), **extra)
            trainer.evaluate = lambda *a, **k: hook(trainer.it)
            clock.start()
            trainer.fit()
        else:
            _paddleseg_train(model, train, val, iters, batch, every, seed, clock, hook)
    except _Reached:
        pass
    except Exception:                          # noqa: BLE001 (reported by the parent)
        error = traceback.format_exc()
        raise
    finally:
        clock.pause()
        done.set()
        other_go.set()
        results.put(dict(side=side, seed=seed, name=name, iters=iters, batch=batch, log=log, error=error))


def _paddleseg_train(model, train, val, iters, batch, every, seed, clock, hook):
    """``paddleseg.core.train`` with PaddleSeg's recipe; its evaluation replaced by ``hook`` (the
    same scores as the course side) and its checkpoint writes kept off the clock."""
    # PaddleSeg is not a dependency of the course (make bench-paddleseg installs it on the side)
    from paddleseg import optimizers
    from paddleseg.models import losses as ps_losses
    from paddleseg.utils import logger

    ps_train = importlib.import_module("paddleseg.core.train")   # the module (paddleseg.core.train is also a function)
    logger.log_level = 1                       # warnings only
    r = PADDLESEG_RECIPE
    net = _AsList(model)
    schedule = paddle.optimizer.lr.PolynomialDecay(r["learning_rate"], decay_steps=iters,
                                                   end_lr=r["end_lr"], power=r["power"])
    opt = optimizers.Momentum(momentum=r["momentum"], weight_decay=r["weight_decay"])(net, schedule)
    counter = dict(it=0)

    def evaluate(model, val_dataset, **kwargs):
        counter["it"] += every
        s = hook(min(counter["it"], iters))
        return s["miou"], s["pixel_acc"], None, None, None

    save, flops = paddle.save, paddle.flops

    def timed_save(*args, **kwargs):
        clock.pause()
        save(*args, **kwargs)
        clock.start()
    # its closing FLOP count, after the last step, calls paddle.flops (broken in Paddle 3.3: bench.count_macs)
    ps_train.evaluate, paddle.save, paddle.flops = evaluate, timed_save, lambda *a, **k: None
    loss = _mended(getattr(ps_losses, r["loss"]))()
    coef = [r["coef"]] + [r["aux_coef"]] * (_outputs(net, val[0][0]) - 1)
    np.random.seed(seed)                       # its sampler shuffles by epoch; anything else draws from here
    clock.start()
    try:
        with tempfile.TemporaryDirectory(prefix="ttt_paddleseg_") as out:
            ps_train.train(net, _PaddleSegItems(train, seed), val_dataset=val, optimizer=opt, save_dir=out,
                           # log_iters past the end: its log line indexes the loss as Paddle 2's 1-element
                           # array, which Paddle 3's 0-d loss is not (the hook reports instead)
                           iters=iters, batch_size=batch, save_interval=every, log_iters=iters + 1,
                           losses=dict(types=[loss] * len(coef), coef=coef), keep_checkpoint_max=1)
    finally:
        paddle.save, paddle.flops = save, flops


def _mended(loss_class):
    """PaddleSeg 2.8's ``CrossEntropyLoss`` under Paddle 3: its last step multiplies a float32
    mask by ``ones_like(label)``, int64, which Paddle 3's type promotion refuses. The label
    reaches that step as float32 here; without class weights (the recipe's) that step only
    counts pixels, so the loss is unchanged."""
    class Mended(loss_class):
        def _post_process_loss(self, logit, label, semantic_weights, loss):
            return super()._post_process_loss(logit, label.astype("float32"), semantic_weights, loss)
    return Mended


def _outputs(net, image):
    """How many outputs (main + aux) ``net`` returns in training, its state left as it was."""
    state = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    with paddle.no_grad():
        n = len(net(paddle.to_tensor(image[None])))
    net.set_state_dict(state)
    return n


def run(cfg, course_first=True):
    """Both sides of one run (``cfg``: name, seed, size, target, eval_every, iters, batch),
    interleaved; returns ``{side: result}`` with each side's evaluation log."""
    ctx = mp.get_context("spawn")
    go = {s: ctx.Event() for s in SIDES}
    done = {s: ctx.Event() for s in SIDES}
    results = ctx.Queue()
    procs = [ctx.Process(target=_side, args=(s, cfg, go[s], go[o], done[s], done[o], results))
             for s, o in zip(SIDES, reversed(SIDES))]
    for p in procs:
        p.start()
    go[SIDES[0] if course_first else SIDES[1]].set()
    out = {}
    for _ in SIDES:
        r = results.get()
        out[r["side"]] = r
    for p in procs:
        p.join()
    failed = {s: r["error"] for s, r in out.items() if r["error"]}
    if failed:
        raise RuntimeError("time-to-target run failed: " + "\n".join(f"{s}: {e}" for s, e in failed.items()))
    return out


def reached(result, target):
    """(step, wall s, CPU s) at the first evaluation whose mIoU >= ``target``, or None."""
    for e in result["log"]:
        if e["miou"] >= target:
            return e["it"], e["wall"], e["cpu"]
    return None


def summary(runs, target):
    """Per model: time-to-target of each side over seeds (median and range), and the ratio
    PaddleSeg / course per seed (> 1: the course is faster)."""
    lines = [f"time to held-out mIoU >= {target} (training seconds; evaluation, checkpoint writes and "
             "turn-taking excluded): median [min-max] over seeds"]
    by_model = {}
    for r in runs:
        by_model.setdefault(r["cfg"]["name"], []).append(r)
    for name, rs in by_model.items():
        cells, ratios = {}, []
        for side in SIDES:
            hits = [reached(r["sides"][side], target) for r in rs]
            ok = [h for h in hits if h]
            wall = np.array([h[1] for h in ok]) if ok else np.array([np.nan])
            steps = [h[0] for h in ok]
            cells[side] = (f"{np.median(wall):7.1f} s [{wall.min():.1f}-{wall.max():.1f}], "
                           f"steps {steps}, reached {len(ok)}/{len(hits)}")
        for r in rs:
            a, b = reached(r["sides"]["course"], target), reached(r["sides"]["paddleseg"], target)
            ratios.append(b[1] / a[1] if a and b else np.nan)
        ratios = np.array(ratios)
        lines.append(f"{name}: course {cells['course']} | paddleseg {cells['paddleseg']} | "
                     f"PaddleSeg/course {np.nanmedian(ratios):.2f} "
                     f"[{np.nanmin(ratios):.2f}-{np.nanmax(ratios):.2f}]" if np.isfinite(ratios).any()
                     else f"{name}: course {cells['course']} | paddleseg {cells['paddleseg']}")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["unet", "deeplabv3plus"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--target", type=float, default=0.7, help="held-out mIoU both sides reach")
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--iters", type=int, default=None, help="schedule length (default: the course recipe's)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: the course recipe's)")
    p.add_argument("--size", choices=("course", "full"), default="course")
    p.add_argument("--full-schedule", action="store_true",
                   help="train to the end of the schedule instead of stopping at the target")
    p.add_argument("--out", default=None, help="write every run's evaluation log here (JSON)")
    a = p.parse_args(argv)
    target = 2.0 if a.full_schedule else a.target      # an mIoU never reached: no early stop
    runs, start = [], time.time()
    print(f"load average {os.getloadavg()[0]:.2f}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}", flush=True)
    for name in a.models:
        for i, seed in enumerate(a.seeds):
            cfg = dict(name=name, seed=seed, size=a.size, target=target, eval_every=a.eval_every,
                       iters=a.iters, batch=a.batch)
            t = time.time()
            sides = run(cfg, course_first=i % 2 == 0)
            runs.append(dict(cfg=cfg, sides=sides, seconds=time.time() - t))
            for side in SIDES:
                last = sides[side]["log"][-1] if sides[side]["log"] else {}
                hit = reached(sides[side], a.target)
                print(f"{name} seed {seed} {side:9s}: "
                      + (f"mIoU >= {a.target} at step {hit[0]} after {hit[1]:.1f} s ({hit[2]:.1f} CPU s)" if hit
                         else f"not reached; last mIoU {last.get('miou', float('nan')):.3f} at step {last.get('it')}"),
                      flush=True)
    print(summary(runs, a.target))
    print(f"{time.time() - start:.0f} s in all; load average at the end {os.getloadavg()[0]:.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(dict(target=a.target, eval_every=a.eval_every, size=a.size, paddleseg_recipe=PADDLESEG_RECIPE,
                           paddleseg_configs=PADDLESEG_CONFIGS, runs=runs), f, indent=1)
            f.write("\n")
    return runs

