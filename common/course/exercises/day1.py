"""Day 1: the confusion matrix, mIoU/mAcc and one training step."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from common.metrics import confusion_matrix, segmentation_scores

from .framework import Case, _rng, check, run_check


def _conf_ref(pred, label, num_classes, ignore_index=255):
    return confusion_matrix(pred, label, num_classes, ignore_index)


@check("day1_concepts")
def check_confusion_matrix(fn, verbose=True):
    """``fn(pred, label, num_classes, ignore_index=255)`` -> (K, K) counts, rows = ground truth.

    """
    label = np.array([[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1], [0, 0, 2, 2, 1, 1],
                      [0, 0, 2, 2, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    pred = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1], [0, 0, 2, 0, 1, 1],
                     [0, 0, 2, 2, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 2, 0]])
    cases = [Case("the 6x6 example of Day 1 · 04", (pred, label, 3))]
    lab2 = label.copy()
    lab2[0, :3] = 255                                         # a border nobody labelled
    cases.append(Case("the same with 3 ignored (255) pixels", (pred, lab2, 3)))
    cases.append(Case("class 3 never occurs", (pred, label, 4)))
    rng = _rng(1)
    for shape, k in [((2, 17, 23), 5), ((31, 9), 21)]:
        lab = rng.integers(0, k, shape)
        lab[rng.random(shape) < 0.1] = 255
        cases.append(Case(f"random {shape}, K={k}, 10% ignored", (rng.integers(0, k, shape), lab, k)))
    for c in cases:
        c.expected = _conf_ref(*c.args)

    def counts_ignored(pred, label, k, ignore_index=255):
        lab = np.where(label == ignore_index, 0, label)
        return _conf_ref(pred, lab, k)

    mistakes = [
        ("rows must be the ground truth (label) and columns the prediction: yours is the "
         "transpose", lambda p, l, k, ignore_index=255: _conf_ref(p, l, k, ignore_index).T),
        ("pixels whose label is ignore_index (255) must not be counted at all; drop them "
         "before counting (the sum of the matrix is the number of labelled pixels)",
         counts_ignored),
    ]
    return run_check("check_confusion_matrix", fn, cases,
                     "entry [i, j] counts pixels with label i and prediction j; skip pixels "
                     "whose label is ignore_index; np.bincount(label * K + pred, minlength=K*K) "
                     "counts every pair at once", mistakes, verbose=verbose)


def _miou_ref(conf):
    s = segmentation_scores(conf)
    return dict(iou=s["iou"], miou=s["miou"], acc=s["acc"], macc=s["macc"])


@check("day1_concepts")
def check_miou(fn, verbose=True):
    """``fn(conf)`` -> dict(iou=(K,), miou=float, acc=(K,), macc=float); NaN for a class
    absent from prediction and label (IoU) or from the label (acc), skipped by the means.

    """
    hand = np.array([[24, 1, 1], [0, 6, 0], [1, 0, 3]])
    absent = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])      # class 2 nowhere
    never_pred = np.array([[5, 1, 0], [2, 3, 0], [1, 1, 0]])  # class 2 never predicted
    rng = _rng(2)
    cases = [Case("the 3-class example of Day 1 · 04", (hand,)),
             Case("class 2 absent from label and prediction", (absent,)),
             Case("class 2 in the label, never predicted", (never_pred,))]
    for k in (5, 21):
        conf = rng.integers(0, 50, (k, k)) * (rng.random((k, k)) < 0.6)
        conf[k - 1] = 0
        conf[:, k - 1] = 0
        cases.append(Case(f"random {k} classes, the last absent", (conf,)))
    for c in cases:
        c.expected = _miou_ref(*c.args)

    def mean_not_nanmean(conf):
        r = _miou_ref(conf)
        return dict(r, miou=float(np.mean(np.nan_to_num(r["iou"]))),
                    macc=float(np.mean(np.nan_to_num(r["acc"]))))

    def precision_not_recall(conf):
        conf = np.asarray(conf, float)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = np.diag(conf) / conf.sum(0)
        return dict(_miou_ref(conf), acc=acc, macc=float(np.nanmean(acc)))

    mistakes = [
        ("a class absent from both prediction and label has IoU 0/0: make it NaN and average "
         "with np.nanmean, do not count it as 0", mean_not_nanmean),
        ("per-class accuracy is recall, TP / (TP + FN): divide by the row sum (ground truth), "
         "not the column sum", precision_not_recall),
    ]
    return run_check("check_miou", fn, cases,
                     "TP = diagonal, FN = row sum - TP, FP = column sum - TP; IoU = TP / (TP + FP "
                     "+ FN), acc = TP / (TP + FN); NaN where the denominator is 0; means skip NaN",
                     mistakes, verbose=verbose)


def _tiny_model(seed):
    paddle.seed(seed)
    return paddle.nn.Sequential(paddle.nn.Conv2D(3, 6, 3, padding=1), paddle.nn.ReLU(),
                                paddle.nn.Dropout(0.0), paddle.nn.Conv2D(6, 3, 1))


def _train_step_ref(model, optimizer, images, labels):
    model.train()
    loss = F.cross_entropy(model(images), labels.astype("int64"), axis=1, ignore_index=255)
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()
    return float(loss)


def _no_train(step, model, optimizer, images, labels):
    """``step`` with ``model.train()`` turned into a no-op: the mistake of forgetting it."""
    train, model.train = model.train, lambda: None
    try:
        return step(model, optimizer, images, labels)
    finally:
        model.train = train


@check("day1_concepts")
def check_train_step(fn, verbose=True):
    """``fn(model, optimizer, images, labels)`` -> loss (float): one forward, pixel-wise
    cross-entropy ignoring 255, backward, optimiser step, gradients cleared.

    """

    rng = _rng(3)
    batches = []
    for shape in [(2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 5, 7)]:
        lab = rng.integers(0, 3, (shape[0],) + shape[2:])
        lab[rng.random(lab.shape) < 0.2] = 255
        batches.append((rng.standard_normal(shape).astype(np.float32), lab.astype(np.int64)))

    def run(step):
        """Three steps with SGD; the losses and the final weights."""
        model = _tiny_model(0)
        model.eval()           # the step must switch to train mode itself
        opt = paddle.optimizer.SGD(0.5, parameters=model.parameters())
        losses = [step(model, opt, paddle.to_tensor(x), paddle.to_tensor(y)) for x, y in batches]
        weights = tuple(p.numpy() for p in model.parameters())
        return dict(losses=np.array([float(v) for v in losses]), weights=weights,
                    train_mode=float(model.training))

    case = Case("3 SGD steps on a 2-layer conv net, 20% of labels 255", (),
                inputs="a conv net left in eval mode, SGD lr 0.5, batches (2, 3, 8, 8), (2, 3, 8, 8), "
                       "(1, 3, 5, 7) with int64 labels; compared: the 3 losses and the final weights")
    case.expected = run(_train_step_ref)

    def no_clear(model, opt, x, y):
        model.train()
        loss = F.cross_entropy(model(x), y, axis=1, ignore_index=255)
        loss.backward()
        opt.step()
        return float(loss)

    def no_step(model, opt, x, y):
        model.train()
        loss = F.cross_entropy(model(x), y, axis=1, ignore_index=255)
        loss.backward()
        opt.clear_grad()
        return float(loss)

    mistakes = [("clear the gradients after each step (optimizer.clear_grad()): Paddle adds "
                 "new gradients to the old ones", no_clear),
                ("call optimizer.step() after loss.backward(): the weights did not change", no_step),
                ("switch the model to training mode first (model.train()): dropout and batch norm "
                 "behave differently in eval mode, and evaluation leaves the model there",
                 lambda m, o, x, y: _no_train(_train_step_ref, m, o, x, y))]
    return run_check("check_train_step", fn, [case],
                     "model.train(); logits = model(images); loss = F.cross_entropy(logits, labels, "
                     "axis=1, ignore_index=255); loss.backward(); optimizer.step(); "
                     "optimizer.clear_grad(); return float(loss)", mistakes, atol=1e-5,
                     call=lambda f, c: run(f), verbose=verbose)
