"""``Trainer``: the training loop of the course, with evaluation, checkpoints and inference.

The loop is the one Day 1 writes by hand (forward, loss, backward, step) plus what a real
run needs: a poly learning rate (with an optional linear warm-up), evaluation on a
schedule, a ``tqdm`` bar, a history to plot, AMP on GPU, data parallel, and checkpoints.

The model's task decides how it trains and is scored (``TASKS``, ``Trainer(task=...)``, by
default the model's own ``task`` attribute, else ``"semantic"``): a semantic model's logits
go to ``loss_fn`` with the label maps and it is scored by mIoU; an instance model (Mask R-CNN,
SOLO, UPSNet: ``task = "instance"``) takes the targets, ``model(images, targets)`` returns a
dict of losses (their sum is minimised, each term gets its own history; the dataset's
``collate`` batches the target dicts, ``common.data.instances.SceneInstances``) and it is
scored by mask AP; a panoptic model trained by a loss on its outputs (Panoptic-DeepLab:
``task = "panoptic"``) trains as a semantic one and is scored apart, by PQ.

Exact resume: the batch of iteration ``it`` (which scenes, which augmentation) and the
dropout noise are pure functions of ``(seed, it)``, and a checkpoint holds the weights,
the optimiser state and ``it``. So a run stopped at any checkpoint and resumed ends with
the same weights as a run never stopped (tested).
"""
from __future__ import annotations

import os
import pickle
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import paddle

from . import inference, metrics
from .data.instances import targets_to_tensors
from .distributed import sync_batchnorm
from .losses import SegLoss


def poly_lr(base_lr, it, iters, warmup=0, power=0.9):
    """Learning rate of iteration ``it`` (0-based) of ``iters``: ``base_lr * (1 - it / iters)
    ** power`` (poly decay to 0), times ``min(1, (it + 1) / warmup)`` during a linear warm-up
    of ``warmup`` iterations (0 = none), which keeps the first updates of a freshly
    initialised head (RPN, box and mask heads) from blowing up the backbone.

    Args:
        base_lr: the peak learning rate. it, iters: iteration and run length.
        warmup: warm-up iterations (>= 0). power: poly exponent.

    Returns:
        float.
    """
    lr = base_lr * (1 - it / iters) ** power
    return lr * min(1.0, (it + 1) / warmup) if warmup else lr


def total_loss(losses):
    """The loss to minimise of a model's loss dict: its ``"loss"`` entry when it has one
    (the model's own total), else the sum of its terms."""
    if not isinstance(losses, dict) or not losses:
        raise TypeError("a model trained on (images, targets) must return a non-empty dict of "
                        f"loss tensors from model(images, targets), got {type(losses).__name__}")
    return losses["loss"] if "loss" in losses else paddle.add_n(list(losses.values()))


def step_seed(seed, it):
    """The seed of iteration ``it``: augmentation and dropout/RoI-sampling noise."""
    return seed * 1_000_003 + it


def step_batch(n, batch_size, it, seed, rank=0, world=1):
    """``[(index, step_seed), ...]`` of iteration ``it``'s batch: epoch ``e`` visits the
    ``n`` items in the order ``default_rng([seed, e]).permutation(n)``. Under data parallel
    each of ``world`` processes takes every ``world``-th item of the global batch."""
    per_epoch = max(n // batch_size, 1)
    epoch, j = divmod(it, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    idx = np.resize(order, per_epoch * batch_size)[j * batch_size:(j + 1) * batch_size]
    return [(int(i), step_seed(seed, it)) for i in idx[rank::world]]


class _PackedCollate:
    """A dataset's collate whose per-image targets travel as one pickled uint8 buffer:
    Paddle's DataLoader workers hand arrays over through shared memory, which cannot hold
    a zero-size array (the boxes of an image without objects, a level without positive
    cells), and the main process unpacks them (``_unpack_targets``)."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, items):
        images, targets = self.collate(items)
        return images, np.frombuffer(pickle.dumps(list(targets), protocol=5), np.uint8).copy()


def _unpack_targets(buf):
    """The list of target dicts of a ``_PackedCollate`` batch, as Paddle tensors."""
    raw = buf.numpy() if isinstance(buf, paddle.Tensor) else np.asarray(buf)
    return targets_to_tensors(pickle.loads(raw.tobytes()))


class _StepSampler(paddle.io.Sampler):
    """Yields ``step_batch`` for iterations ``start..iters-1``."""

    def __init__(self, n, batch_size, iters, start, seed, rank=0, world=1):
        self.n, self.bs, self.iters, self.start, self.seed = n, batch_size, iters, start, seed
        self.rank, self.world = rank, world

    def __iter__(self):
        for it in range(self.start, self.iters):
            yield step_batch(self.n, self.bs, it, self.seed, self.rank, self.world)

    def __len__(self):
        return self.iters - self.start


def _atomic_save(obj, path):
    """Write to a temporary file in the same folder, then rename over ``path``: a crash
    mid-write never leaves a truncated checkpoint or destroys the previous one. Temporary
    files that a killed save left next to ``path`` (``<name>.XXXXXXXX.tmp``) are removed
    first; only one process may save to a given path (the Trainer saves on rank 0)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = re.compile(re.escape(path.name) + r"\.[a-z0-9_]{8}\.tmp")    # mkstemp's names
    for old in path.parent.iterdir():
        if stale.fullmatch(old.name) and old.is_file():
            old.unlink()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        paddle.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# make_optimizer's names of Paddle's optimiser classes, and a slot name of each (to tell
# the optimiser of a checkpoint written before checkpoints recorded it).
_OPTIMIZER_NAMES = {"Momentum": "sgd", "Adam": "adam"}
_OPTIMIZER_SLOTS = {"_velocity_": "Momentum", "_moment1_": "Adam"}


def _checkpoint_optimizer(ckpt):
    """Class name of the optimiser whose state ``ckpt`` holds, or None if unknown/empty."""
    if ckpt.get("optimizer"):
        return ckpt["optimizer"]
    for key in ckpt.get("opt", {}):
        for slot, name in _OPTIMIZER_SLOTS.items():
            if slot in key:
                return name
    return None


def make_optimizer(name, lr, parameters, weight_decay=1e-4, grad_clip=None):
    """'sgd' (momentum 0.9) or 'adam', both with L2 weight decay.

    Adam uses Paddle's multi-tensor kernel: the per-parameter Adam/AdamW kernels leave
    the CPU's OpenMP threads fighting, so that with 2 threads a U-Net step took 3.2x
    longer than with this one (measured by the course's thread benchmark, ``make bench``).
    """
    if name == "sgd":
        return paddle.optimizer.Momentum(lr, momentum=0.9, parameters=parameters,
                                         weight_decay=weight_decay, grad_clip=grad_clip)
    if name == "adam":
        return paddle.optimizer.Adam(lr, parameters=parameters, weight_decay=weight_decay,
                                     grad_clip=grad_clip, use_multi_tensor=True)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")


def optimizer_step(compute_loss, opt, scaler=None):
    """One forward / backward / update of ``opt``; returns the loss tensor.

    Args:
        compute_loss: a function of no arguments that runs the forward pass and the loss.
        opt: the Paddle optimizer.
        scaler: a ``paddle.amp.GradScaler`` for mixed precision (the forward then runs under
            ``auto_cast``, and the loss is scaled so small float16 gradients do not vanish),
            or None for plain float32.
    """
    with paddle.amp.auto_cast(enable=scaler is not None):
        loss = compute_loss()
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    opt.clear_grad()
    return loss


# task -> the scores of ``evaluate()`` kept in the history (none: scored outside the Trainer)
TASKS = {"semantic": ("miou", "macc"), "instance": ("ap", "ap50"), "panoptic": ()}


class Trainer:
    """Train and evaluate a segmentation model.

    Args:
        model: a ``paddle.nn.Layer``: either a semantic model mapping (N, 3, H, W) to
            logits (N, K, H, W) (in train mode it may return ``[main, aux, ...]``), or an
            instance/panoptic model whose ``model(images, targets)`` returns a dict of
            losses in train mode and one dict per image in eval mode.
        train_data: a dataset whose items are ``(image, label)`` arrays, or
            ``(image, target dict)`` with a ``collate`` attribute (instance task).
        val_data: the same kind of dataset, for ``evaluate()`` (optional).
        num_classes: K (default: ``train_data.num_classes``).
        iters: optimiser steps.
        epochs: or the number of passes over ``train_data`` (give one of the two).
        batch_size: images per step (over all processes under data parallel).
        lr: peak learning rate, with a poly(0.9) decay to 0.
        optimizer: 'sgd' (momentum 0.9) or 'adam'.
        weight_decay: L2 weight decay.
        loss_fn: ``loss_fn(outputs, labels)``; default cross-entropy (+0.4 x aux). Not
            used for the instance task (the model computes its losses).
        warmup: iterations of linear learning-rate warm-up (``poly_lr``); 0 = none.
        clip_norm: clip the gradients to this global norm (None = no clipping).
        collate: batch collate function; default the dataset's ``collate`` if it has one.
        eval_every: evaluate on ``val_data`` every this many iterations (and at the end).
        ckpt_path: if set, a checkpoint is written there every ``ckpt_every`` iterations.
        ckpt_every: iterations between checkpoints (default ``eval_every``, else the end).
        amp: mixed precision; ``None`` = on when training on a GPU.
        num_workers: DataLoader worker processes (0 = load in the main process); they
            also build the targets of a dataset's ``target_transform``.
        seed: the batches, augmentation and step noise are functions of (seed, iteration).
        ignore_index: label value that is neither trained nor scored.
        progress: show a ``tqdm`` bar.
        task: ``"semantic"``, ``"instance"`` or ``"panoptic"`` (module doc); None: the
            model's ``task`` attribute, ``"semantic"`` when it has none.
    """

    def __init__(self, model, train_data, val_data=None, num_classes=None, iters=None,
                 epochs=None, batch_size=8, lr=0.01, optimizer="sgd", weight_decay=1e-4,
                 loss_fn=None, eval_every=None, ckpt_path=None, ckpt_every=None, amp=None,
                 num_workers=0, seed=0, ignore_index=255, progress=True, warmup=0,
                 clip_norm=None, collate=None, task=None):
        if num_classes is None:
            num_classes = getattr(train_data, "num_classes", None)
        if num_classes is None:
            raise ValueError("num_classes is required (train_data has no num_classes)")
        if (iters is None) == (epochs is None):
            raise ValueError("give exactly one of iters= or epochs=")
        self.task = getattr(model, "task", "semantic") if task is None else task
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        if batch_size < 1 or len(train_data) < 1:
            raise ValueError(f"batch_size ({batch_size}) and len(train_data) "
                             f"({len(train_data)}) must be positive")
        self.world = paddle.distributed.get_world_size()
        self.rank = paddle.distributed.get_rank()
        if batch_size % self.world:
            raise ValueError(f"batch_size {batch_size} is not divisible by {self.world} processes")
        # several processes: BatchNorm statistics of the global batch, not of each share
        model, self.sync_batchnorm = sync_batchnorm(model, self.world)
        self.model = model
        self.net = paddle.DataParallel(model) if self.world > 1 else model
        self.train_data, self.val_data = train_data, val_data
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.batch_size, self.seed, self.base_lr = batch_size, seed, lr
        steps_per_epoch = max(len(train_data) // batch_size, 1)
        self.iters = iters if iters is not None else epochs * steps_per_epoch
        self.eval_every = eval_every or self.iters
        self.ckpt_path, self.ckpt_every = ckpt_path, ckpt_every or eval_every or self.iters
        self.loss_fn = loss_fn or SegLoss(ignore_index=ignore_index)
        self.collate = collate or getattr(train_data, "collate", None)
        if self.task == "instance" and self.collate is None:
            raise ValueError(f"an instance model trains on (image, target dict) items batched by a collate: "
                             f"{type(train_data).__name__} has no .collate and none was given")
        if self.task == "panoptic" and val_data is not None:
            raise ValueError("a panoptic model is scored by PQ outside the Trainer "
                             "(common.metrics.panoptic_quality of model.panoptic(images)); give no val_data")
        self.num_workers, self.progress = num_workers, progress
        if warmup < 0 or int(warmup) != warmup:
            raise ValueError(f"warmup must be a whole number of iterations >= 0, got {warmup!r}")
        self.warmup = int(warmup)
        self.amp = (paddle.device.get_device().startswith("gpu")) if amp is None else amp
        self.scaler = paddle.amp.GradScaler() if self.amp else None
        clip = paddle.nn.ClipGradByGlobalNorm(clip_norm) if clip_norm else None
        self.opt = make_optimizer(optimizer, lr, model.parameters(), weight_decay, clip)
        self.it = 0
        self.history = dict(iter=[], loss=[], lr=[], eval_iter=[], seconds=0.0)
        self.history.update({k: [] for k in self._eval_keys()})     # miou/macc or ap/ap50
        self.last_losses = {}

    # ---------------------------------------------------------------- training
    def lr_at(self, it):
        """The schedule (``poly_lr``): lr * (1 - it / iters) ** 0.9, after ``warmup``."""
        return poly_lr(self.base_lr, it, self.iters, self.warmup)

    def _loader(self):
        sampler = _StepSampler(len(self.train_data), self.batch_size, self.iters, self.it,
                               self.seed, self.rank, self.world)
        packed = self.task == "instance"             # lists of target dicts, see _PackedCollate
        return paddle.io.DataLoader(self.train_data, batch_sampler=sampler,
                                    num_workers=self.num_workers, return_list=True,
                                    collate_fn=_PackedCollate(self.collate) if packed else self.collate)

    def train_step(self, images, labels):
        """One forward / loss / backward / step; returns the loss as a float.

        ``labels`` is the batch's labels for ``loss_fn`` (label maps, or a panoptic model's
        targets) or, for the instance task, a list of per-image target dicts, which go to the
        model: ``model(images, targets)`` returns its loss dict; the float value of each term
        is kept in ``last_losses``.
        """
        self.model.train()          # evaluate()/predict() leave the model in eval mode
        self.opt.set_lr(self.lr_at(self.it))
        paddle.seed(step_seed(self.seed, self.it))   # dropout/RoI-sampling noise: a function of it
        terms = {}
        if self.task == "instance":
            def compute():
                terms.update(self.net(images, list(labels)))
                return total_loss(terms)
        else:
            def compute():
                return self.loss_fn(self.net(images), labels)
        loss = optimizer_step(compute, self.opt, self.scaler)
        self.last_losses = {k: float(v) for k, v in terms.items() if k != "loss"}
        return float(loss)

    def fit(self):
        """Train until ``iters``; returns the history (also in ``self.history``)."""
        from tqdm.auto import tqdm

        self.model.train()
        bar = tqdm(total=self.iters, initial=self.it, disable=not self.progress or self.rank,
                   desc="train", leave=True)
        start = time.perf_counter()
        for images, labels in self._loader():
            if self.task == "instance":
                labels = _unpack_targets(labels)
            loss = self.train_step(images, labels)
            self.it += 1
            self.history["iter"].append(self.it)
            self.history["loss"].append(loss)
            self.history["lr"].append(self.lr_at(self.it - 1))
            for k, v in self.last_losses.items():
                self.history.setdefault(k, []).append(v)
            bar.update(1)
            post = dict(loss=f"{loss:.3f}")
            if self.val_data is not None and (self.it % self.eval_every == 0 or self.it == self.iters):
                scores = self.evaluate()
                self.history["eval_iter"].append(self.it)
                for k in self._eval_keys():
                    self.history.setdefault(k, []).append(scores[k])
                self.model.train()
            for key in self._eval_keys()[:1]:
                if self.history.get(key):
                    post[key] = f"{self.history[key][-1]:.3f}"
            bar.set_postfix(post, refresh=False)
            if self.ckpt_path and (self.it % self.ckpt_every == 0 or self.it == self.iters):
                self.save(self.ckpt_path)
        bar.close()
        self.history["seconds"] += time.perf_counter() - start
        return self.history

    # -------------------------------------------------------------- evaluation
    # One inference path: these call ``common.inference``. They leave the model in eval
    # mode (``train_step`` switches back), as they always did.
    def _eval_keys(self):
        """The scores of ``evaluate()`` kept in the history."""
        return list(TASKS[self.task])

    def evaluate(self, data=None, batch_size=None, **predict_kwargs):
        """Dataset scores on ``data`` (default val): ``common.metrics.segmentation_scores``
        of a semantic model (``predict_kwargs``: scales, flip, window as ``predict_probs``),
        ``common.metrics.mask_ap`` of an instance model (on instance datasets)."""
        data = self.val_data if data is None else data
        if data is None:
            raise ValueError("evaluate() needs data: no val_data was given")
        if self.task == "panoptic":
            raise ValueError("a panoptic model is scored by PQ: common.metrics.panoptic_quality of "
                             "model.panoptic(images)")
        self.model.eval()
        if self.task == "instance":
            preds, targets = inference.predict_instances(self.model, data,
                                                         batch_size or self.batch_size)
            return metrics.mask_ap(preds, targets)
        return inference.evaluate(self.model, data, self.num_classes, self.ignore_index,
                                  batch_size or self.batch_size, **predict_kwargs)

    def predict_probs(self, images, scales=(1.0,), flip=False, window=None):
        """Softmax probabilities (N, K, H, W) averaged over scales and flips
        (``common.inference.predict_probs``); ``window=(size, stride)`` runs a sliding
        window at each scale (for images larger than the training crops)."""
        self.model.eval()
        return inference.predict_probs(self.model, images, scales, flip, window)

    def predict(self, images, **kwargs):
        """Label maps (N, H, W) int64 for normalised images (N, 3, H, W); kwargs as ``predict_probs``."""
        return self.predict_probs(images, **kwargs).argmax(1).numpy()

    # ------------------------------------------------------------- checkpoints
    def save(self, path):
        """Checkpoint weights, optimiser, iteration and history, atomically (rank 0 only)."""
        if self.rank:
            return
        _atomic_save(dict(model=self.model.state_dict(), opt=self.opt.state_dict(),
                          optimizer=type(self.opt).__name__,
                          param_names=[p.name for p in self.model.parameters()], it=self.it,
                          history=self.history, model_class=type(self.model).__name__,
                          scaler=self.scaler.state_dict() if self.scaler else None), path)

    def _rename_opt_state(self, state, old_names):
        """Optimiser slots are keyed by Paddle's global parameter names ("conv2d_3.w_0_velocity_0"),
        which differ between two builds of the same model; map them by parameter order."""
        new_names = [p.name for p in self.model.parameters()]
        prefix = {o + "_": n + "_" for o, n in zip(old_names, new_names)}
        out = {}
        for key, value in state.items():
            head = next((o for o in prefix if key.startswith(o)), None)
            out[prefix[head] + key[len(head):] if head else key] = value
        return out

    def resume(self, path):
        """Load a checkpoint written by ``save``; ``fit()`` then continues from its iteration.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is empty or unreadable, holds another model (class,
                parameter names or shapes, e.g. another ``num_classes``), or the state of
                another optimiser (its moments cannot carry over; resuming would silently
                restart them). Every message names the file.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"checkpoint {path} is empty (0 bytes): an interrupted copy or save?")
        try:
            ckpt = paddle.load(str(path))
        except Exception as err:        # pickle/EOF/parse errors: none of them names the file
            raise ValueError(f"cannot read checkpoint {path} (truncated or not a Paddle "
                             f"checkpoint): {type(err).__name__}: {err}") from err
        if not isinstance(ckpt, dict) or "model" not in ckpt or "it" not in ckpt:
            raise ValueError(f"{path} is not a Trainer checkpoint")
        mine = type(self.model).__name__
        own = self.model.state_dict()
        theirs = ckpt["model"]
        if ckpt.get("model_class") != mine or set(theirs) != set(own):
            raise ValueError(f"{path} holds a {ckpt.get('model_class')} checkpoint whose "
                             f"parameters do not fit this {mine}")
        bad = [(k, list(theirs[k].shape), list(own[k].shape)) for k in own
               if list(theirs[k].shape) != list(own[k].shape)]
        if bad:
            raise ValueError(f"{path} does not fit this {mine} (another num_classes or width?): "
                             + "; ".join(f"parameter {k} has shape {a} in the checkpoint, {b} here"
                                         for k, a, b in bad[:4]) + (" ..." if len(bad) > 4 else ""))
        saved, ours = _checkpoint_optimizer(ckpt), type(self.opt).__name__
        if saved is not None and saved != ours:
            raise ValueError(
                f"{path} holds the state of a {saved} optimiser "
                f"(optimizer={_OPTIMIZER_NAMES.get(saved, saved)!r}) but this Trainer uses {ours} "
                f"(optimizer={_OPTIMIZER_NAMES.get(ours, ours)!r}): its state cannot carry over. "
                "Resume with the checkpoint's optimizer, or start a new run from its weights "
                "with model.set_state_dict(paddle.load(path)['model']).")
        self.model.set_state_dict(theirs)
        self.opt.set_state_dict(self._rename_opt_state(ckpt["opt"], ckpt.get("param_names", [])))
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        self.it, self.history = int(ckpt["it"]), ckpt["history"]
        return self
