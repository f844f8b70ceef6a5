"""Day 1: the confusion matrix, mIoU/mAcc and one training step."""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn.functional as F

from common.lang import N_, _
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
    cases = [Case(N_("the 6x6 example of Day 1 · 04"), (pred, label, 3))]
    lab2 = label.copy()
    lab2[0, :3] = 255                                         # a border nobody labelled
    cases.append(Case(N_("the same with 3 ignored (255) pixels"), (pred, lab2, 3)))
    cases.append(Case(N_("class 3 never occurs"), (pred, label, 4)))
    one_sided = np.array([[0, 0, 4, 4], [1, 1, 4, 4]]), np.array([[0, 3, 3, 0], [1, 1, 0, 0]])
    cases.append(Case(N_("class 3 only predicted, class 4 only in the label"), (*one_sided, 5)))
    lab0 = label.copy()
    lab0[5] = 0
    cases.append(Case(N_("void marked 0 (ignore_index=0), as some datasets do; class 0 is "
                         "still predicted"), (pred, lab0, 3), dict(ignore_index=0)))
    rng = _rng(1)
    lab8 = rng.integers(0, 21, (12, 15)).astype(np.uint8)
    lab8[:2] = 255
    cases.append(Case(N_("uint8 label and prediction (as the course's label maps), K=21"),
                      (rng.integers(0, 21, (12, 15)).astype(np.uint8), lab8, 21)))
    for shape, k in [((2, 17, 23), 5), ((31, 9), 21)]:
        lab = rng.integers(0, k, shape)
        lab[rng.random(shape) < 0.1] = 255
        cases.append(Case(_("random {shape}, K={k}, 10% ignored").format(shape=shape, k=k),
                          (rng.integers(0, k, shape), lab, k)))
    for c in cases:
        c.expected = _conf_ref(*c.args, **c.kwargs)

    def counts_ignored(pred, label, k, ignore_index=255):
        lab = np.where(label == ignore_index, 0, label)
        return _conf_ref(pred, lab, k)

    def uint8_codes(pred, label, k, ignore_index=255):
        keep = label != ignore_index
        code = label[keep] * k + pred[keep]            # wraps at 256 when the maps are uint8
        return np.bincount(code.ravel(), minlength=k * k)[:k * k].reshape(k, k)

    mistakes = [
        (N_("rows must be the ground truth (label) and columns the prediction: yours is the "
            "transpose"), lambda p, l, k, ignore_index=255: _conf_ref(p, l, k, ignore_index).T),
        (N_("use the ignore_index argument: the value that marks void pixels is not always 255"),
         lambda p, l, k, ignore_index=255: _conf_ref(p, l, k)),
        (N_("pixels whose label is ignore_index must not be counted at all; drop them "
            "before counting (the sum of the matrix is the number of labelled pixels)"),
         counts_ignored),
        (N_("with uint8 maps, label * K + pred wraps around at 256: turn the values into a wide "
            "integer type (int64) before combining them"), uint8_codes),
    ]
    return run_check("check_confusion_matrix", fn, cases,
                     N_("entry [i, j] counts the pixels with label i and prediction j; leave out the "
                        "pixels whose label is ignore_index; the table is K x K even when a class never "
                        "occurs; one pass over all pixels can count every (label, prediction) pair if "
                        "you code each pair as a single integer"), mistakes, verbose=verbose)


def _miou_ref(conf):
    s = segmentation_scores(conf)
    return dict(iou=s["iou"], miou=s["miou"], acc=s["acc"], macc=s["macc"])


def _ratios(conf):
    conf = np.asarray(conf, float)
    return np.diag(conf), conf.sum(1), conf.sum(0)        # TP, row sums (label), column sums (prediction)


@check("day1_concepts")
def check_miou(fn, verbose=True):
    """``fn(conf)`` -> dict(iou=(K,), miou=float, acc=(K,), macc=float); NaN for a class
    absent from prediction and label (IoU) or from the label (acc), skipped by the means.

    """
    hand = np.array([[24, 1, 1], [0, 6, 0], [1, 0, 3]])
    absent = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])      # class 2 nowhere
    never_pred = np.array([[5, 1, 0], [2, 3, 0], [1, 1, 0]])  # class 2 never predicted
    pred_only = np.array([[5, 1, 2], [2, 3, 1], [0, 0, 0]])   # class 2 predicted, not in the label
    rng = _rng(2)
    cases = [Case(N_("the 3-class example of Day 1 · 04"), (hand,)),
             Case(N_("class 2 absent from label and prediction"), (absent,)),
             Case(N_("class 2 in the label, never predicted"), (never_pred,)),
             Case(N_("class 2 predicted, absent from the label (IoU 0, accuracy NaN)"), (pred_only,))]
    for k in (5, 21):
        conf = rng.integers(0, 50, (k, k)) * (rng.random((k, k)) < 0.6)
        conf[k - 1] = 0
        conf[:, k - 1] = 0
        cases.append(Case(_("random {k} classes, the last absent").format(k=k), (conf,)))
    for c in cases:
        c.expected = _miou_ref(*c.args)

    def mean_not_nanmean(conf):
        r = _miou_ref(conf)
        return dict(r, miou=float(np.mean(np.nan_to_num(r["iou"]))),
                    macc=float(np.mean(np.nan_to_num(r["acc"]))))

    def absent_is_perfect(conf):
        r = _miou_ref(conf)
        return dict(r, iou=np.nan_to_num(r["iou"], nan=1.0), miou=float(np.mean(np.nan_to_num(r["iou"], nan=1.0))))

    def precision_not_recall(conf):
        tp, _, pr = _ratios(conf)
        with np.errstate(invalid="ignore", divide="ignore"):
            acc = tp / pr
        return dict(_miou_ref(conf), acc=acc, macc=float(np.nanmean(acc)))

    def union_counts_tp_twice(conf):
        tp, gt, pr = _ratios(conf)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = tp / (gt + pr)
        return dict(_miou_ref(conf), iou=iou, miou=float(np.nanmean(iou)))

    def dice(conf):
        tp, gt, pr = _ratios(conf)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = 2 * tp / (gt + pr)
        return dict(_miou_ref(conf), iou=iou, miou=float(np.nanmean(iou)))

    def pooled_iou(conf):
        tp, gt, pr = _ratios(conf)
        return dict(_miou_ref(conf), miou=float(tp.sum() / (gt + pr - tp).sum()))

    def zero_accuracy(conf):
        tp, gt, _ = _ratios(conf)
        acc = tp / np.maximum(gt, 1)
        return dict(_miou_ref(conf), acc=acc, macc=float(np.mean(acc)))

    mistakes = [
        (N_("a class absent from both prediction and label has IoU 0/0: make it NaN and leave it "
            "out of the mean, do not count it as 0"), mean_not_nanmean),
        (N_("a class absent from both prediction and label has done nothing: its IoU is NaN "
            "(undefined), not 1, and the mean skips it"), absent_is_perfect),
        (N_("per-class accuracy is recall, TP / (TP + FN): divide by the row sum (ground truth), "
            "not the column sum"), precision_not_recall),
        (N_("the union counts each pixel once: TP + FP + FN = row sum + column sum - TP (the "
            "diagonal is in both sums)"), union_counts_tp_twice),
        (N_("that is the Dice coefficient 2TP / (2TP + FP + FN); IoU is TP / (TP + FP + FN)"), dice),
        (N_("mIoU is the mean of the per-class IoUs (every class weighs the same), not the "
            "total TP over the total union of all classes"), pooled_iou),
        (N_("a class absent from the label has no pixels to find: its accuracy is 0/0 = NaN, "
            "not 0, and mAcc skips it"), zero_accuracy),
    ]
    return run_check("check_miou", fn, cases,
                     N_("TP = the diagonal, FN = the rest of the row (label), FP = the rest of the "
                        "column (prediction); IoU = TP / (TP + FP + FN), acc = TP / (TP + FN), each "
                        "per class; NaN where the denominator is 0; the means skip NaN"),
                     mistakes, verbose=verbose)


def _conv_net(seed, batch_norm=False):
    paddle.seed(seed)
    mid = [paddle.nn.BatchNorm2D(6)] if batch_norm else [paddle.nn.Dropout(0.0)]
    return paddle.nn.Sequential(paddle.nn.Conv2D(3, 6, 3, padding=1), *mid, paddle.nn.ReLU(),
                                paddle.nn.Conv2D(6, 3, 1))


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

    def run(step, batch_norm, optimizer):
        """Three steps from eval mode; the losses, the final weights and what was returned."""
        model = _conv_net(0, batch_norm)
        model.eval()           # the step must switch to train mode itself
        opt = (paddle.optimizer.SGD(0.5, parameters=model.parameters()) if optimizer == "sgd"
               else paddle.optimizer.Adam(0.05, parameters=model.parameters()))
        losses = [step(model, opt, paddle.to_tensor(x), paddle.to_tensor(y)) for x, y in batches]
        is_float = all(isinstance(v, (float, np.floating)) for v in losses)
        weights = tuple(p.numpy() for p in model.parameters())
        return dict(losses=np.array([float(v) for v in losses]), weights=weights,
                    train_mode=float(model.training), returns_float=float(is_float))

    shapes = _("batches (2, 3, 8, 8), (2, 3, 8, 8), (1, 3, 5, 7) with int64 labels, 20% of them 255")
    cases = [Case(N_("3 SGD steps on a 2-layer conv net, 20% of labels 255"), ("sgd", False),
                  inputs=_("a conv net left in eval mode, SGD lr 0.5, {shapes}; compared: the 3 losses, "
                           "the final weights, the mode and the type returned").format(shapes=shapes)),
             Case(N_("3 Adam steps on a conv net with batch norm"), ("adam", True),
                  inputs=_("a conv + batch norm net left in eval mode, Adam lr 0.05, {shapes}; compared: "
                           "the 3 losses, the final weights (batch norm's statistics differ between "
                           "train and eval mode), the mode and the type returned").format(shapes=shapes))]
    for c in cases:
        c.expected = run(_train_step_ref, c.args[1], c.args[0])

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

    def ignored_as_class_0(model, opt, x, y):
        return _train_step_ref(model, opt, x, paddle.where(y == 255, paddle.zeros_like(y), y))

    def returns_tensor(model, opt, x, y):
        model.train()
        loss = F.cross_entropy(model(x), y, axis=1, ignore_index=255)
        loss.backward()
        opt.step()
        opt.clear_grad()
        return loss

    mistakes = [(N_("clear the gradients after each step (optimizer.clear_grad()): Paddle adds "
                    "new gradients to the old ones"), no_clear),
                (N_("call optimizer.step() after loss.backward(): the weights did not change"), no_step),
                (N_("switch the model to training mode first (model.train()): dropout and batch norm "
                    "behave differently in eval mode, and evaluation leaves the model there"),
                 lambda m, o, x, y: _no_train(_train_step_ref, m, o, x, y)),
                (N_("pixels labelled 255 are unlabelled: the loss must skip them (the ignore_index "
                    "of the cross-entropy), not train them as some class"), ignored_as_class_0),
                (N_("return the loss as a Python float, not the tensor (a tensor keeps its whole "
                    "graph alive, and the caller wants a number)"), returns_tensor)]
    return run_check("check_train_step", fn, cases,
                     N_("one step is: training mode, forward, the pixel-wise cross-entropy over the "
                        "class axis (axis 1) that skips label 255, backward, one optimiser step, the "
                        "gradients cleared; return the loss as a Python float, not a tensor"),
                     mistakes, atol=1e-5, call=lambda f, c: run(f, c.args[1], c.args[0]), verbose=verbose)
