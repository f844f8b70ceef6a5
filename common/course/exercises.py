"""Homework checks (每日打卡): run a student's function against the course's references.

Every ``check_*`` takes the student's function (or functions), runs it on several cases,
small hand examples first and then random shapes, and compares the result with the
reference in ``common`` or Paddle. It prints one verdict, like a teacher would:

* ``✓ check_miou: passed 5 cases``;
* ``✗ check_miou: case 2 of 5 (...) failed`` with the inputs' shapes, what was expected and
  what came back (the whole arrays when they are small, else the first wrong element), and
  a hint: a specific one when the answer equals a known mistake (kernel not rotated,
  ``align_corners`` flipped, ignored pixels counted...), else a general one;
* ``… check_miou: not done yet`` when the function still raises ``NotImplementedError``.

No exception escapes a check. Each returns a :class:`CheckResult` and records it in
``RESULTS`` (the latest result per check), which ``common.course.checkin`` collects. ``DAYS`` lists
the checks of each day's ``exercises.ipynb``.
"""
from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field

import numpy as np

from common.labels import LABEL_DIVISOR

# ----------------------------------------------------------------------------- framework
PASSED, FAILED, NOT_DONE = "passed", "failed", "not done"

DAYS = {
    "day1_concepts": ["check_confusion_matrix", "check_miou", "check_train_step"],
    "day2_fcn": ["check_bilinear_resize", "check_max_unpool", "check_transposed_conv",
                 "check_fc_to_conv"],
    "day3_unet_psp": ["check_crop_concat", "check_receptive_field", "check_psp_module"],
    "day4_deeplab": ["check_atrous_conv", "check_aspp_sum", "check_aspp_concat",
                     "check_meanfield_step"],
    "day5_context_graphs": ["check_gcu_projection", "check_glore_unit"],
    "day6_instance_panoptic": ["check_box_iou", "check_nms", "check_roi_align", "check_pq",
                               "check_grouping"],
}

RESULTS: dict = {}


@dataclass
class CheckResult:
    """The verdict of one check: ``status`` is 'passed', 'failed' or 'not done'."""
    name: str
    status: str
    message: str
    cases: int = 0

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def to_dict(self):
        return {**asdict(self), "passed": self.passed}

    def __bool__(self):
        return self.passed

    def __repr__(self):
        return f"CheckResult({self.name!r}, {self.status!r})"

    def _ipython_display_(self):
        """The check printed its verdict already; show nothing more in a notebook."""


def results():
    """The recorded results, as a list of dicts (name, status, passed, message, cases)."""
    return [r.to_dict() for r in RESULTS.values()]


def reset():
    RESULTS.clear()


def _finish(name, status, message, cases=0, verbose=True):
    res = CheckResult(name, status, message, cases)
    RESULTS[name] = res
    if verbose:
        print(message)
    return res


@dataclass
class Case:
    """One call of the student's function: ``fn(*args, **kwargs)`` should give ``expected``."""
    desc: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    expected: object = None
    inputs: str = None          # how to describe the inputs, when shapes say nothing


def _numpy(v):
    if hasattr(v, "numpy") and not isinstance(v, np.ndarray):
        v = v.numpy()
    return v


def _describe(v):
    """A short description of one input: shape and dtype, or the value when it is small."""
    v = _numpy(v)
    if isinstance(v, np.ndarray):
        return f"array {tuple(v.shape)} {v.dtype}"
    if isinstance(v, (list, tuple)) and v and all(np.isscalar(a) or isinstance(a, tuple) for a in v):
        return repr(v) if len(repr(v)) < 80 else f"{type(v).__name__} of {len(v)}"
    if isinstance(v, (list, tuple)):
        return f"{type(v).__name__} of {len(v)} {type(v[0]).__name__ if v else ''}".strip()
    if np.isscalar(v) or v is None:
        return repr(v)
    return type(v).__name__


def _describe_inputs(case):
    if case.inputs:
        return case.inputs
    parts = [_describe(a) for a in case.args]
    parts += [f"{k}={_describe(v)}" for k, v in case.kwargs.items()]
    return ", ".join(parts)


def _fmt(a):
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return np.array2string(a, precision=4, suppress_small=True, max_line_width=100)
    return np.array2string(a, max_line_width=100)


def compare(expected, actual, atol=1e-4, rtol=1e-4, where="result"):
    """None when ``actual`` matches ``expected`` (arrays, numbers, tuples, dicts), else a
    sentence saying what differs (shape, type, or values with an example)."""
    actual = _numpy(actual)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected a dict with keys {sorted(expected)}, got {type(actual).__name__}"
        for k in expected:
            if k not in actual:
                return f"{where}: key {k!r} is missing (expected keys {sorted(expected)})"
            msg = compare(expected[k], actual[k], atol, rtol, f"{where}[{k!r}]")
            if msg:
                return msg
        return None
    if isinstance(expected, tuple):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            return f"{where}: expected a tuple of {len(expected)}, got {_describe(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            msg = compare(e, a, atol, rtol, f"{where}[{i}]")
            if msg:
                return msg
        return None
    exp = np.asarray(expected)
    try:
        act = np.asarray(actual, dtype=np.float64 if exp.dtype.kind == "f" else None)
    except (TypeError, ValueError):
        return f"{where}: expected a number or array, got {type(actual).__name__}"
    if act.dtype == object:
        return f"{where}: expected a number or array, got {type(actual).__name__}"
    if exp.ndim == 0 and act.size == 1:
        act = act.reshape(())
    if act.shape != exp.shape:
        hint = ""
        if sorted(act.shape) == sorted(exp.shape):
            hint = " (the same sizes in another order: axes swapped?)"
        msg = f"{where}: shape {act.shape}, expected {exp.shape}{hint}"
        if 0 < exp.size <= 48 and 0 < act.size <= 48:
            msg += f"\n  expected:\n{_indent(_fmt(exp))}\n  yours:\n{_indent(_fmt(act))}"
        return msg
    e, a = exp.astype(np.float64), act.astype(np.float64)
    bad = ~(np.isclose(a, e, atol=atol, rtol=rtol) | (np.isnan(a) & np.isnan(e)))
    if not bad.any():
        return None
    n = int(bad.sum())
    if exp.ndim == 0:
        return f"{where}: expected {float(e):.6g}, yours {float(a):.6g}"
    if exp.size <= 48:
        return (f"{where}: {n} of {exp.size} values differ\n  expected:\n{_indent(_fmt(exp))}"
                f"\n  yours:\n{_indent(_fmt(act))}")
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"{where}: {n} of {exp.size} values differ; first at index {idx}: expected "
            f"{e[idx]:.6g}, yours {a[idx]:.6g} (largest difference "
            f"{np.nanmax(np.abs(np.where(bad, a - e, 0))):.4g})")


def _indent(s, pad="    "):
    return "\n".join(pad + line for line in s.splitlines())


def run_check(name, fn, cases, general_hint, mistakes=(), atol=1e-4, rtol=1e-4, call=None,
              verbose=True):
    """Run ``fn`` on every case; report the first failure.

    ``mistakes``: (hint, wrong_fn) pairs; when the student's answer equals ``wrong_fn``'s on
    the failing case, that hint is given instead of ``general_hint``. ``call(fn, case)``
    overrides how a case is run (default ``fn(*case.args, **case.kwargs)``).
    """
    call = call or (lambda f, c: f(*c.args, **c.kwargs))
    if not callable(fn):
        return _finish(name, FAILED, f"✗ {name}: expected a function, got {type(fn).__name__}",
                       verbose=verbose)
    for i, case in enumerate(cases):
        head = f"✗ {name}: case {i + 1} of {len(cases)} ({case.desc}) failed"
        inputs = f"  inputs: {_describe_inputs(case)}"
        try:
            actual = call(fn, case)
        except NotImplementedError:
            return _finish(name, NOT_DONE, f"… {name}: not done yet (the function still raises "
                           "NotImplementedError: replace the stub with your code)", verbose=verbose)
        except Exception as exc:   # the student's bug, reported, never raised
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f" (line {frame.lineno}: {frame.line})" if frame.line else ""
            return _finish(name, FAILED, f"{head}\n{inputs}\n  your function raised "
                           f"{type(exc).__name__}: {exc}{where}\n  hint: {general_hint}",
                           verbose=verbose)
        problem = compare(case.expected, actual, atol, rtol)
        if problem is None:
            continue
        hint = general_hint
        for mistake_hint, wrong in mistakes:
            try:
                if compare(call(wrong, case), actual, atol, rtol) is None:
                    hint = mistake_hint
                    break
            except Exception:     # a mistake model that does not apply to this case
                continue
        return _finish(name, FAILED, f"{head}\n{inputs}\n  {problem}\n  hint: {hint}",
                       verbose=verbose)
    n = len(cases)
    return _finish(name, PASSED, f"✓ {name}: passed {n} case{'s' if n > 1 else ''}", n, verbose)


def _rng(seed=0):
    return np.random.default_rng(seed)


# ============================================================================ Day 1
def _conf_ref(pred, label, num_classes, ignore_index=255):
    from common.metrics import confusion_matrix
    return confusion_matrix(pred, label, num_classes, ignore_index)


def check_confusion_matrix(fn, verbose=True):
    """``fn(pred, label, num_classes, ignore_index=255)`` -> (K, K) counts, rows = ground truth.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
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
    from common.metrics import segmentation_scores
    s = segmentation_scores(conf)
    return dict(iou=s["iou"], miou=s["miou"], acc=s["acc"], macc=s["macc"])


def check_miou(fn, verbose=True):
    """``fn(conf)`` -> dict(iou=(K,), miou=float, acc=(K,), macc=float); NaN for a class
    absent from prediction and label (IoU) or from the label (acc), skipped by the means.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
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
    import paddle
    paddle.seed(seed)
    return paddle.nn.Sequential(paddle.nn.Conv2D(3, 6, 3, padding=1), paddle.nn.ReLU(),
                                paddle.nn.Dropout(0.0), paddle.nn.Conv2D(6, 3, 1))


def _train_step_ref(model, optimizer, images, labels):
    import paddle.nn.functional as F
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


def check_train_step(fn, verbose=True):
    """``fn(model, optimizer, images, labels)`` -> loss (float): one forward, pixel-wise
    cross-entropy ignoring 255, backward, optimiser step, gradients cleared.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    import paddle

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
        import paddle.nn.functional as F
        model.train()
        loss = F.cross_entropy(model(x), y, axis=1, ignore_index=255)
        loss.backward()
        opt.step()
        return float(loss)

    def no_step(model, opt, x, y):
        import paddle.nn.functional as F
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


# ============================================================================ Day 2
def _bilinear_ref(x, size, align_corners=False):
    from common.ops import bilinear_resize
    return bilinear_resize(x, size, align_corners)


def check_bilinear_resize(fn, verbose=True):
    """``fn(x, size, align_corners=False)``: (H, W) array -> (H_out, W_out), as Paddle's
    ``interpolate(mode='bilinear')``.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    import paddle
    import paddle.nn.functional as F

    a = np.array([[0, 10, 20], [30, 40, 50]], np.float32)
    rng = _rng(4)
    cases = [Case("2x3 -> 4x6, half-pixel", (a, (4, 6))),
             Case("2x3 -> 4x6, align_corners=True", (a, (4, 6)), dict(align_corners=True)),
             Case("3x3 -> 2x2 (down)", (np.arange(9, dtype=np.float32).reshape(3, 3), (2, 2)))]
    for shape, size, ac in [((7, 5), (16, 9), False), ((13, 11), (5, 17), True), ((6, 9), (2, 4), False)]:
        cases.append(Case(f"random {shape} -> {size}", (rng.random(shape, dtype=np.float32), size),
                          dict(align_corners=ac)))
    for c in cases:
        x, size = c.args
        ac = c.kwargs.get("align_corners", False)
        c.expected = F.interpolate(paddle.to_tensor(x[None, None]), size=list(size), mode="bilinear",
                                   align_corners=ac)[0, 0].numpy()

    def no_clamp(x, size, align_corners=False):
        def coords(n_out, n_in):
            d = np.arange(n_out)
            src = d * (n_in - 1) / max(n_out - 1, 1) if align_corners else (d + 0.5) * n_in / n_out - 0.5
            i0 = np.floor(src).astype(int)
            return i0, np.minimum(i0 + 1, n_in - 1), src - i0
        j0, j1, tx = coords(size[1], x.shape[1])
        r = x[:, j0] * (1 - tx) + x[:, j1] * tx
        i0, i1, ty = coords(size[0], x.shape[0])
        return r[i0] * (1 - ty[:, None]) + r[i1] * ty[:, None]

    mistakes = [
        ("you used the other align_corners convention: False means half-pixel centres, "
         "src = (d + 0.5) * in / out - 0.5; True means src = d * (in - 1) / (out - 1)",
         lambda x, size, align_corners=False: _bilinear_ref(x, size, not align_corners)),
        ("clamp the source position at 0 (np.maximum(src, 0)): with half-pixel centres the "
         "first outputs map to src < 0, and index -1 wraps to the last pixel", no_clamp),
        ("size is (H_out, W_out): rows first; x (width) uses size[1]",
         lambda x, size, align_corners=False: _bilinear_ref(x, size[::-1], align_corners)),
    ]
    return run_check("check_bilinear_resize", fn, cases,
                     "interpolate each row along x (two neighbours floor(src) and floor(src) + 1, "
                     "clipped to the last index, weights 1 - t and t), then each column along y",
                     mistakes, verbose=verbose)


def check_max_unpool(fn, verbose=True):
    """``fn(x, indices, output_size)``: values (C, h, w) and flat per-plane indices
    ``row * W + col`` -> (C, H, W) of zeros with each value at its index.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    from common.ops import max_pool2d_with_indices, max_unpool2d

    x = np.array([[1, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 2]], np.float32)[None]
    rng = _rng(5)
    cases = []
    for desc, inp, k in [("the 4x4 example of Day 2 · 02", x, 2),
                         ("2 channels, 6x9, kernel 3", rng.random((2, 6, 9), dtype=np.float32), 3),
                         ("3 channels, 8x6, kernel 2", rng.random((3, 8, 6), dtype=np.float32), 2)]:
        v, idx = max_pool2d_with_indices(inp, k)
        cases.append(Case(desc, (v, idx, inp.shape[1:]),
                          expected=max_unpool2d(v, idx, k, output_size=inp.shape[1:])))
    v, idx = max_pool2d_with_indices(rng.random((2, 7, 5), dtype=np.float32), 2)
    cases.append(Case("7x5 pooled by 2 (odd sides: the last row and column were dropped)",
                      (v, idx, (7, 5)), expected=max_unpool2d(v, idx, 2, output_size=(7, 5))))

    def decode_with_h(x, idx, size):
        h, w = size
        return max_unpool2d(x, (idx // h) * w + idx % h, 1, output_size=size)

    mistakes = [("the index is row * W + col with W the width of the *output*: decode with "
                 "divmod(index, W), not with H", decode_with_h)]
    return run_check("check_max_unpool", fn, cases,
                     "an index is row * W + col in a plane of the output size (H, W): start from "
                     "zeros (C, H * W), put each value at its index in its own channel "
                     "(np.put_along_axis), reshape to (C, H, W)",
                     mistakes, verbose=verbose)


def _tconv_ref(x, w, stride=1, padding=0):
    import paddle
    import paddle.nn.functional as F
    return F.conv2d_transpose(paddle.to_tensor(x[None]), paddle.to_tensor(w), stride=stride,
                              padding=padding)[0].numpy()


def check_transposed_conv(fn, verbose=True):
    """``fn(x, w, stride=1, padding=0)``: x (C_in, H, W), w Paddle's (C_in, C_out, k, k) ->
    (C_out, H_out, W_out) as ``conv2d_transpose``.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    from common.ops import conv2d, zero_insert

    x = np.array([[1, 2], [3, 4]], np.float32)[None]
    w = np.array([[1, 2], [3, 4]], np.float32)[None, None]
    rng = _rng(6)
    cases = [Case("2x2 input, 2x2 kernel, stride 1", (x, w)),
             Case("2x2 input, 2x2 kernel, stride 2", (x, w), dict(stride=2)),
             Case("3x3 kernel (asymmetric), stride 2, padding 1",
                  (rng.standard_normal((1, 3, 3)).astype(np.float32),
                   np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)), dict(stride=2, padding=1))]
    for cin, cout, hw, k, s, p in [(2, 3, (4, 5), 3, 2, 1), (3, 2, (5, 3), 4, 2, 1), (2, 2, (3, 4), 3, 3, 0)]:
        cases.append(Case(f"random C_in={cin} C_out={cout} {hw} k={k} s={s} p={p}",
                          (rng.standard_normal((cin,) + hw).astype(np.float32),
                           rng.standard_normal((cin, cout, k, k)).astype(np.float32)),
                          dict(stride=s, padding=p)))
    for c in cases:
        c.expected = _tconv_ref(*c.args, **c.kwargs)

    def recipe(x, w, stride=1, padding=0, rotate=True, pad_fix=True, insert=1):
        k = w.shape[-1]
        z = zero_insert(x, stride if insert == 1 else stride + 1)
        p = k - 1 - padding if pad_fix else k - 1
        z = np.pad(z, ((0, 0), (p, p), (p, p))) if p >= 0 else z[:, -p:p, -p:p]
        wr = w.transpose(1, 0, 2, 3)
        return conv2d(z, wr[:, :, ::-1, ::-1] if rotate else wr)

    mistakes = [
        ("rotate the kernel by 180 degrees (w[:, :, ::-1, ::-1]) before the convolution",
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, rotate=False)),
        ("pad by k - 1 - padding on each side (the padding of the forward conv is taken away)",
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, pad_fix=False)),
        ("insert stride - 1 zeros between neighbouring pixels, not stride",
         lambda x, w, stride=1, padding=0: recipe(x, w, stride, padding, insert=2)),
    ]
    return run_check("check_transposed_conv", fn, cases,
                     "zero-insert stride - 1 zeros (ops.zero_insert), pad every side by "
                     "k - 1 - padding, then ops.conv2d with w.transpose(1, 0, 2, 3) rotated "
                     "by 180 degrees; the output is C_out x ((H-1)s - 2p + k) x ...",
                     mistakes, verbose=verbose)


def check_fc_to_conv(fn, verbose=True):
    """``fn(weight, in_shape)``: Paddle Linear weight (C*h*w, out) -> conv weight
    (out, C, h, w) such that the conv over the (C, h, w) map equals the Linear.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    from common.ops import fc_weight_to_conv

    rng = _rng(7)
    cases = [Case("Linear 4 -> 2 as a 1x1 conv", (np.arange(8, dtype=np.float32).reshape(4, 2), (4, 1, 1))),
             Case("Linear 2*2*2 -> 3 as a 2x2 conv", (np.arange(24, dtype=np.float32).reshape(8, 3), (2, 2, 2)))]
    for c, h, w, out in [(3, 4, 5, 6), (16, 1, 1, 10), (5, 3, 2, 4)]:
        cases.append(Case(f"random Linear {c}*{h}*{w} -> {out}",
                          (rng.standard_normal((c * h * w, out)).astype(np.float32), (c, h, w))))
    for case in cases:
        case.expected = fc_weight_to_conv(case.args[0], None, case.args[1])

    mistakes = [
        ("Paddle's Linear weight is (in, out): transpose it to (out, in) before reshaping; "
         "reshaping directly mixes inputs and outputs",
         lambda wt, shape: wt.reshape(wt.shape[1], *shape)),
        ("Paddle flattens (C, h, w) with C slowest: reshape to (out, C, h, w), not (out, h, w, C)",
         lambda wt, shape: wt.T.reshape(wt.shape[1], shape[1], shape[2], shape[0]).transpose(0, 3, 1, 2)),
    ]
    return run_check("check_fc_to_conv", fn, cases,
                     "weight.T has one row per output unit over the flattened (C, h, w) input: "
                     "reshape it to (out, C, h, w)", mistakes, verbose=verbose)


# ============================================================================ Day 3
def _crop_concat_ref(skip, x):
    h, w = x.shape[-2:]
    H, W = skip.shape[-2:]
    top, left = (H - h) // 2, (W - w) // 2
    return np.concatenate([skip[:, :, top:top + h, left:left + w], x], axis=1)


def check_crop_concat(fn, verbose=True):
    """``fn(skip, x)``: (N, C1, H, W) and (N, C2, h, w) NumPy arrays -> (N, C1 + C2, h, w):
    the centred h x w window of ``skip`` (extra pixel at the bottom/right when H - h is odd),
    then ``x``, along channels: U-Net's skip connection.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    import paddle

    from common.models.unet import center_crop

    rng = _rng(8)
    skip = np.arange(36, dtype=np.float32).reshape(1, 1, 6, 6)
    cases = [Case("skip 6x6 (0..35), x 4x4 of -1", (skip, -np.ones((1, 1, 4, 4), np.float32))),
             Case("skip 7x7, x 4x4 (odd margin)", (np.arange(49, dtype=np.float32).reshape(1, 1, 7, 7),
                                                   -np.ones((1, 1, 4, 4), np.float32)))]
    for n, c1, c2, big, small in [(2, 3, 2, (64, 64), (56, 56)), (1, 2, 4, (17, 20), (12, 13)),
                                  (1, 4, 4, (136, 136), (104, 104))]:
        cases.append(Case(f"random N={n}, skip {c1}x{big}, x {c2}x{small}",
                          (rng.random((n, c1) + big, dtype=np.float32),
                           rng.random((n, c2) + small, dtype=np.float32))))
    for c in cases:
        s, x = c.args
        crop = center_crop(paddle.to_tensor(s), x.shape[-2:]).numpy()
        c.expected = np.concatenate([crop, x], 1)

    def off_by_one(skip, x):
        h, w = x.shape[-2:]
        top, left = (skip.shape[-2] - h + 1) // 2, (skip.shape[-1] - w + 1) // 2
        return np.concatenate([skip[:, :, top:top + h, left:left + w], x], 1)

    def corner(skip, x):
        h, w = x.shape[-2:]
        return np.concatenate([skip[:, :, :h, :w], x], 1)

    mistakes = [("crop the centre: top = (H - h) // 2, left = (W - w) // 2, and the window is "
                 "[top : top + h]", corner),
                ("off by one: with an odd margin the extra pixel goes to the bottom/right, so "
                 "top = (H - h) // 2 (rounded down)", off_by_one),
                ("concatenate [skip, x] in that order (the skip's channels first)",
                 lambda s, x: np.concatenate([x, _crop_concat_ref(s, x)[:, :s.shape[1]]], 1))]
    return run_check("check_crop_concat", fn, cases,
                     "top = (H - h) // 2, left = (W - w) // 2; crop skip[:, :, top:top+h, "
                     "left:left+w]; np.concatenate([crop, x], axis=1)", mistakes, verbose=verbose)


def _rf_ref(layers):
    from common.course.receptive_field import receptive_field
    return receptive_field([(k, s, d, 0) for k, s, d in layers])[-1]["rf"]


def check_receptive_field(fn, verbose=True):
    """``fn(layers)``: a list of (kernel, stride, dilation) -> receptive field (int) of one
    unit of the last layer, in input pixels.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    cases = [Case("two 3x3 convs", ([(3, 1, 1), (3, 1, 1)],)),
             Case("3x3 conv, 2x2 pool stride 2, 3x3 conv", ([(3, 1, 1), (2, 2, 1), (3, 1, 1)],)),
             Case("3x3 convs with dilation 1, 2, 4", ([(3, 1, 1), (3, 1, 2), (3, 1, 4)],)),
             Case("U-Net encoder (4 levels of 2 convs + pool)",
                  ([(3, 1, 1), (3, 1, 1), (2, 2, 1)] * 4 + [(3, 1, 1), (3, 1, 1)],)),
             Case("ResNet-like stem", ([(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2)],))]
    rng = _rng(9)
    for _ in range(2):
        n = int(rng.integers(3, 9))
        cases.append(Case(f"random stack of {n}", ([(int(rng.choice([1, 2, 3, 5])), int(rng.integers(1, 3)),
                                                     int(rng.integers(1, 4))) for _ in range(n)],)))
    for c in cases:
        c.expected = _rf_ref(*c.args)

    def jump_first(layers):
        rf, jump = 1, 1
        for k, s, d in layers:
            jump *= s
            rf += d * (k - 1) * jump
        return rf

    mistakes = [("update the jump (product of strides) *after* growing the field: a layer's own "
                 "stride does not widen what it sees", jump_first),
                ("a dilated kernel spans d * (k - 1) + 1 pixels",
                 lambda layers: _rf_ref([(k, s, 1) for k, s, _ in layers])),
                ("each layer adds (k_eff - 1) * jump, where jump is the product of the strides "
                 "*before* it", lambda layers: _rf_ref([(k, 1, d) for k, _, d in layers]))]
    return run_check("check_receptive_field", fn, cases,
                     "rf = 1, jump = 1; for each layer: rf += (d * (k - 1)) * jump, then jump *= s",
                     mistakes, verbose=verbose)


def check_psp_module(fn, verbose=True):
    """``fn(x, bins, stages)``: x (N, C, H, W) paddle Tensor, ``stages[i]`` the 1x1 conv +
    BN + ReLU of bin ``bins[i]`` -> concat([x] + [upsample(stage(adaptive_avg_pool(x, b)))])
    with bilinear upsampling to (H, W), half-pixel (align_corners=False).

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    import paddle
    import paddle.nn.functional as F

    from common.models.pspnet import PSPModule

    rng = _rng(10)
    cases = []
    for n, c, hw, bins in [(1, 8, (6, 6), (1, 2, 3, 6)), (2, 4, (9, 7), (1, 2, 3, 6)), (1, 8, (5, 11), (1, 3))]:
        paddle.seed(int(rng.integers(1000)))
        m = PSPModule(c, bins)
        for st in m.stages:                    # non-trivial BN statistics
            bn = st[1].bn if hasattr(st[1], "bn") else None
            if bn is not None:
                bn._mean.set_value(rng.standard_normal(bn._mean.shape).astype(np.float32) * 0.1)
        m.eval()
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        stages = [st[1] for st in m.stages]
        cases.append(Case(f"N={n}, C={c}, {hw}, bins {bins}", (x, bins, stages),
                          expected=m(x).numpy()))

    def variant(x, bins, stages, pool="avg", ac=False, keep_x=True):
        size = x.shape[-2:]
        outs = [x] if keep_x else []
        for b, st in zip(bins, stages):
            p = F.adaptive_avg_pool2d(x, b) if pool == "avg" else F.adaptive_max_pool2d(x, b)
            outs.append(F.interpolate(st(p), size=size, mode="bilinear", align_corners=ac))
        return paddle.concat(outs, 1)

    mistakes = [("upsample with align_corners=False (half-pixel centres, as everywhere in the course)",
                 lambda x, b, s: variant(x, b, s, ac=True)),
                ("pool with the *average* of each bin (F.adaptive_avg_pool2d), not the max",
                 lambda x, b, s: variant(x, b, s, pool="max")),
                ("keep the input itself as the first part of the concatenation (C -> 2C channels)",
                 lambda x, b, s: variant(x, b, s, keep_x=False))]
    return run_check("check_psp_module", fn, cases,
                     "for each bin b: F.adaptive_avg_pool2d(x, b) -> stage -> F.interpolate(..., "
                     "size=(H, W), mode='bilinear', align_corners=False); paddle.concat([x, ...], axis=1)",
                     mistakes, verbose=verbose)


# ============================================================================ Day 4
def check_atrous_conv(fn, verbose=True):
    """``fn(x, w, rate, padding=0)``: x (C, H, W), w (C_out, C, k, k) -> the conv with the
    kernel dilated by ``rate`` (rate - 1 zeros between taps), as Paddle's ``dilation=rate``.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    import paddle
    import paddle.nn.functional as F

    from common.ops import conv2d, dilate_kernel

    rng = _rng(11)
    x = np.arange(49, dtype=np.float32).reshape(1, 7, 7)
    w = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    cases = [Case("7x7 ramp, 3x3 kernel 1..9, rate 2", (x, w, 2)),
             Case("7x7 ramp, rate 3, padding 3 ('same')", (x, w, 3), dict(padding=3))]
    for c, o, hw, k, r, p in [(2, 3, (12, 10), 3, 2, 2), (3, 2, (15, 16), 3, 4, 0), (1, 2, (11, 9), 2, 3, 1)]:
        cases.append(Case(f"random C={c}->{o} {hw} k={k} rate {r} padding {p}",
                          (rng.standard_normal((c,) + hw).astype(np.float32),
                           rng.standard_normal((o, c, k, k)).astype(np.float32), r), dict(padding=p)))
    for case in cases:
        xx, ww, r = case.args
        case.expected = F.conv2d(paddle.to_tensor(xx[None]), paddle.to_tensor(ww), dilation=r,
                                 padding=case.kwargs.get("padding", 0))[0].numpy()

    def rate_zeros(x, w, rate, padding=0):
        k = w.shape[-1]
        wd = np.zeros(w.shape[:2] + ((k - 1) * (rate + 1) + 1,) * 2, np.float32)
        wd[..., ::rate + 1, ::rate + 1] = w
        return conv2d(x, wd, padding=padding)

    mistakes = [("insert rate - 1 zeros between taps: a k x k kernel becomes (k - 1) * rate + 1 wide",
                 rate_zeros),
                ("dilate the kernel, not the input", lambda x, w, rate, padding=0: conv2d(
                    np.pad(dilate_kernel(x, rate), ((0, 0), (padding,) * 2, (padding,) * 2)), w))]
    return run_check("check_atrous_conv", fn, cases,
                     "wd = zeros((C_out, C, (k-1)*rate+1, ...)); wd[..., ::rate, ::rate] = w; "
                     "return ops.conv2d(x, wd, padding=padding)", mistakes, verbose=verbose)


def check_aspp_sum(fn, verbose=True):
    """``fn(x, weights, biases, rates)``: DeepLab V2's ASPP: the sum over branches of the
    3x3 conv with ``weights[i]``, ``biases[i]``, dilation and padding ``rates[i]``
    (paddle Tensors in and out; the output has the input's H, W).

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    import paddle
    import paddle.nn.functional as F

    from common.models.deeplab import ASPPSum

    rng = _rng(12)
    cases = []
    for n, c, k, hw, rates in [(1, 2, 3, (9, 9), (1, 2)), (2, 4, 5, (13, 11), (6, 12, 18, 24)),
                               (1, 3, 2, (7, 16), (2, 3, 5))]:
        paddle.seed(int(rng.integers(1000)))
        m = ASPPSum(c, k, rates)
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        cases.append(Case(f"N={n}, C={c}, {k} classes, {hw}, rates {rates}",
                          (x, [b.weight for b in m.branches], [b.bias for b in m.branches], list(rates)),
                          expected=m(x).numpy()))

    def variant(x, ws, bs, rates, dil=True, pad=True):
        return paddle.add_n([F.conv2d(x, w, b, padding=r if pad else 1, dilation=r if dil else 1)
                             for w, b, r in zip(ws, bs, rates)])

    mistakes = [("each branch needs dilation=rate (and padding=rate to keep H, W)",
                 lambda x, w, b, r: variant(x, w, b, r, dil=False)),
                ("padding must equal the rate so that every branch keeps the size H x W",
                 lambda x, w, b, r: variant(x, w, b, r, pad=False)),
                ("V2 sums the branches (paddle.add_n), it does not average them",
                 lambda x, w, b, r: variant(x, w, b, r) / len(r))]
    return run_check("check_aspp_sum", fn, cases,
                     "paddle.add_n([F.conv2d(x, w, b, padding=r, dilation=r) for w, b, r in "
                     "zip(weights, biases, rates)])", mistakes, verbose=verbose)


def check_aspp_concat(fn, verbose=True):
    """``fn(x, branches, pool_branch, project)``: DeepLab V3's ASPP. ``branches`` (1x1 and
    atrous 3x3 conv+BN+ReLU) run on x; ``pool_branch`` (1x1 conv+BN+ReLU) runs on the global
    average of x and is broadcast back to (H, W); all are concatenated along channels in
    that order (image pooling last) and ``project`` (1x1) fuses them.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    import paddle
    import paddle.nn.functional as F

    from common.models.deeplab import ASPPConcat

    rng = _rng(13)
    cases = []
    for n, c, o, hw, rates in [(1, 4, 3, (8, 8), (2, 4)), (2, 6, 4, (9, 13), (6, 12, 18)), (1, 3, 2, (5, 7), (1,))]:
        paddle.seed(int(rng.integers(1000)))
        m = ASPPConcat(c, o, rates)
        for layer in m.sublayers():
            if isinstance(layer, paddle.nn.BatchNorm2D):     # BN statistics that matter
                layer._mean.set_value(rng.standard_normal(layer._mean.shape).astype(np.float32) * 0.2)
        m.eval()
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        pool = m.branches[-1][1]
        cases.append(Case(f"N={n}, C={c}->{o}, {hw}, rates {rates}",
                          (x, list(m.branches[:-1]), pool, m.project), expected=m(x).numpy()))

    def variant(x, branches, pool, project, order="last", how="avg"):
        outs = [b(x) for b in branches]
        g = F.adaptive_avg_pool2d(x, 1) if how == "avg" else F.adaptive_max_pool2d(x, 1)
        g = pool(g).expand([-1, -1, x.shape[2], x.shape[3]])
        outs = outs + [g] if order == "last" else [g] + outs
        return project(paddle.concat(outs, 1))

    mistakes = [("the image-pooling branch goes last in the concatenation (order matters: the "
                 "projection's weights expect it there)", lambda *a: variant(*a, order="first")),
                ("image pooling is a global *average* (F.adaptive_avg_pool2d(x, 1))",
                 lambda *a: variant(*a, how="max"))]
    return run_check("check_aspp_concat", fn, cases,
                     "outs = [b(x) for b in branches]; g = pool_branch(F.adaptive_avg_pool2d(x, 1)) "
                     "expanded to (N, C, H, W); project(paddle.concat(outs + [g], axis=1))",
                     mistakes, verbose=verbose)


def _crf_kernel(image, w_app=10.0, theta_alpha=40.0, theta_beta=13.0, w_smooth=3.0, theta_gamma=3.0):
    from common import crf
    f_app, f_smooth = crf._features(image, theta_alpha, theta_beta, theta_gamma)
    return (w_app * crf._normalise(crf._gauss_matrix(f_app))
            + w_smooth * crf._normalise(crf._gauss_matrix(f_smooth)))


def check_meanfield_step(fn, verbose=True):
    """``fn(q, unary, kernel)``: one mean-field update of the dense CRF. q (K, N) current
    label probabilities, unary (K, N) = -log P, kernel (N, N) the weighted pairwise kernel
    (Potts compatibility) -> new q (K, N) = softmax over labels of (-unary + q @ kernel.T).

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    from common.crf import _softmax, _unary, dense_crf_exact

    rng = _rng(14)
    cases = []
    for k, (h, w) in [(2, (3, 4)), (3, (6, 5)), (4, (9, 8))]:
        logits = rng.standard_normal((k, h, w)) * 2
        probs = _softmax(logits).astype(np.float32)
        image = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
        unary = _unary(probs).reshape(k, -1)
        kernel = _crf_kernel(image)
        q0 = _softmax(-unary)
        cases.append(Case(f"{k} labels, {h}x{w} image, from the unary", (q0, unary, kernel),
                          expected=dense_crf_exact(probs, image, iters=1).reshape(k, -1)))
        q1 = _softmax(rng.standard_normal((k, h * w)))
        cases.append(Case(f"{k} labels, {h}x{w} image, from a random q", (q1, unary, kernel),
                          expected=_softmax(-unary + q1 @ kernel.T)))
    asym = rng.random((12, 12)) * (rng.random((12, 12)) < 0.5)      # j pulls i != i pulls j
    q2, u2 = _softmax(rng.standard_normal((3, 12))), rng.random((3, 12))
    cases.append(Case("3 labels, 12 pixels, an asymmetric kernel", (q2, u2, asym),
                      expected=_softmax(-u2 + q2 @ asym.T)))

    mistakes = [("the message pulls towards the neighbours' labels: add it, softmax(-unary + msg); "
                 "subtracting it pushes away", lambda q, u, k: _softmax(-u - q @ k.T)),
                ("normalise over the labels (axis 0, one distribution per pixel), not over pixels",
                 lambda q, u, k: _softmax(-u + q @ k.T, axis=1)),
                ("the unary is an energy (-log P): use -unary inside the softmax",
                 lambda q, u, k: _softmax(u + q @ k.T)),
                ("kernel[i, j] is the pull of pixel j on pixel i: the message to i is "
                 "sum_j kernel[i, j] q[:, j], i.e. q @ kernel.T", lambda q, u, k: _softmax(-u + q @ k))]
    return run_check("check_meanfield_step", fn, cases,
                     "msg = q @ kernel.T (K, N): for each pixel i, sum_j kernel[i, j] q[:, j]; "
                     "new q = softmax over axis 0 of (-unary + msg), subtract the max for stability",
                     mistakes, verbose=verbose)


# ============================================================================ Day 5
def check_gcu_projection(fn, verbose=True):
    """``fn(x, anchors, sigma)``: x (L, d) pixel features, anchors (d, V), sigma (d, V) ->
    (q, z): soft assignment q (L, V) = softmax over nodes of -||(x_i - w_k) / sigma_k||^2 / 2,
    and node features z (V, d) = sum_i q_ik (x_i - w_k) / sigma_k / sum_i q_ik, each row
    L2-normalised (GCU's graph projection).

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    import paddle

    from common.models.graph import GraphConvUnit

    rng = _rng(15)
    cases = []
    for l, d, v in [(4, 2, 2), (30, 8, 4), (64, 16, 8)]:
        paddle.seed(int(rng.integers(1000)))
        unit = GraphConvUnit(d, v)
        unit.log_sigma.set_value(rng.uniform(-0.5, 1.0, (d, v)).astype(np.float32))
        x = rng.standard_normal((l, d)).astype(np.float32)
        xf = paddle.to_tensor(x[None])
        q = unit.assign(xf)
        z = unit.project(xf, q)
        cases.append(Case(f"L={l} pixels, d={d}, V={v} nodes",
                          (x, unit.anchors.numpy(), np.exp(unit.log_sigma.numpy())),
                          expected=(q[0].numpy(), z[0].numpy())))

    def variant(x, w, s, axis=1, norm=True, scale=True):
        s = s if scale else np.ones_like(s)
        d2 = (((x[:, :, None] - w[None]) / s[None]) ** 2).sum(1)
        e = np.exp(-0.5 * d2 - (-0.5 * d2).max(axis, keepdims=True))
        q = e / e.sum(axis, keepdims=True)
        mass = q.sum(0)[:, None] + 1e-6
        z = (q.T @ x / mass - w.T) / s.T
        if norm:
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return q, z

    mistakes = [("q is a distribution over the nodes for each pixel: softmax along axis 1 (V)",
                 lambda x, w, s: variant(x, w, s, axis=0)),
                ("L2-normalise each node's feature z_k (divide by its norm)",
                 lambda x, w, s: variant(x, w, s, norm=False)),
                ("divide the differences by sigma_k (per dimension) in both q and z",
                 lambda x, w, s: variant(x, w, s, scale=False))]
    return run_check("check_gcu_projection", fn, cases,
                     "d2[i, k] = sum over dims of ((x_i - w_k) / sigma_k)^2; q = softmax(-d2 / 2, "
                     "axis=1); z = (q.T @ x / q.sum(0)[:, None] - anchors.T) / sigma.T; rows / norm",
                     mistakes, atol=1e-4, verbose=verbose)


def check_glore_unit(fn, verbose=True):
    """``fn(x, unit)``: the forward pass of a ``GloReUnit`` written out with its parts:
    states = unit.state(x) (N, S, H, W) and B = unit.proj(x) (N, nodes, H, W), both flattened
    over the L = H*W pixels; V = B states^T / L (N, nodes, S); Z = unit.gcn(V); Y = B^T Z
    back to pixels (N, S, H, W); return x + unit.bn(unit.extend(Y)).

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    import paddle

    from common.models.graph import GloReUnit

    rng = _rng(16)
    cases = []
    for n, c, hw in [(1, 8, (4, 4)), (2, 16, (6, 5)), (1, 12, (3, 7))]:
        paddle.seed(int(rng.integers(1000)))
        unit = GloReUnit(c)
        unit.bn.weight.set_value(rng.uniform(0.5, 1.5, c).astype(np.float32))   # not the identity
        unit.eval()
        x = paddle.to_tensor(rng.standard_normal((n, c) + hw).astype(np.float32))
        cases.append(Case(f"N={n}, C={c}, {hw}", (x, unit), expected=unit(x).numpy()))

    def variant(x, unit, divide=True, residual=True, relu_out=False):
        n, c, h, w = x.shape
        s = unit.state(x).reshape([n, -1, h * w])                 # (N, S, L)
        b = unit.proj(x).reshape([n, -1, h * w])                  # (N, k, L)
        v = paddle.matmul(b, s, transpose_y=True)                 # (N, k, S)
        v = v / (h * w) if divide else v
        z = unit.gcn(v)
        y = paddle.matmul(b, z, transpose_x=True).transpose([0, 2, 1]).reshape([n, -1, h, w])
        out = unit.bn(unit.extend(y))
        return x + out if residual else out

    mistakes = [("divide V = B X^T by the number of pixels L = H*W (the unit accepts any size)",
                 lambda x, u: variant(x, u, divide=False)),
                ("the unit is residual: return x + BN(W_e(Y))", lambda x, u: variant(x, u, residual=False))]
    return run_check("check_glore_unit", fn, cases,
                     "flatten with reshape([N, -1, H*W]); V = matmul(B, states, transpose_y=True) / L; "
                     "Z = unit.gcn(V); Y = matmul(B, Z, transpose_x=True) is (N, L, S): transpose to "
                     "(N, S, L) before reshaping to (N, S, H, W)", mistakes, verbose=verbose)


# ============================================================================ Day 6
def _box_iou_ref(a, b):
    from common.ops.boxes import box_iou
    return box_iou(np.asarray(a, np.float32), np.asarray(b, np.float32)).numpy()


def _random_boxes(rng, n, size=50):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


def check_box_iou(fn, verbose=True):
    """``fn(a, b)``: boxes (n, 4) and (m, 4) as (x0, y0, x1, y1), x1/y1 exclusive (area
    (x1 - x0) * (y1 - y0)) -> IoU matrix (n, m); disjoint boxes have IoU 0.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    a = np.array([[0, 0, 2, 2]], np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [2, 0, 4, 2], [5, 5, 6, 6]], np.float32)
    rng = _rng(17)
    cases = [Case("a 2x2 box against shifted, equal, touching and far boxes", (a, b)),
             Case("nested boxes", (np.array([[0, 0, 4, 4]], np.float32), np.array([[1, 1, 3, 3]], np.float32)))]
    for n, m in [(5, 7), (20, 3)]:
        cases.append(Case(f"random {n} x {m} boxes", (_random_boxes(rng, n), _random_boxes(rng, m))))
    for c in cases:
        c.expected = _box_iou_ref(*c.args)

    def variant(a, b, plus_one=False, clip=True):
        e = 1.0 if plus_one else 0.0
        lt = np.maximum(a[:, None, :2], b[None, :, :2])
        rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
        wh = rb - lt + e
        wh = np.clip(wh, 0, None) if clip else wh
        inter = wh[..., 0] * wh[..., 1]
        area = lambda x: (x[:, 2] - x[:, 0] + e) * (x[:, 3] - x[:, 1] + e)  # noqa: E731
        return inter / (area(a)[:, None] + area(b)[None] - inter)

    mistakes = [("clip the overlap's width and height at 0: two disjoint boxes have a negative "
                 "width *and* height, and their product looks like a positive overlap",
                 lambda a, b: variant(a, b, clip=False)),
                ("x1, y1 are exclusive here: width = x1 - x0, no + 1 (that is the old VOC convention)",
                 lambda a, b: variant(a, b, plus_one=True)),
                ("union = area(a) + area(b) - intersection (the overlap is counted once)",
                 lambda a, b: _box_iou_ref(a, b) / (1 + _box_iou_ref(a, b)))]
    return run_check("check_box_iou", fn, cases,
                     "lt = max of the top-left corners, rb = min of the bottom-right corners (broadcast "
                     "a[:, None] against b[None]); wh = clip(rb - lt, 0); inter = w * h; "
                     "IoU = inter / (area_a + area_b - inter)", mistakes, verbose=verbose)


def _nms_ref(boxes, scores, thr):
    from common.ops.boxes import nms_numpy
    return nms_numpy(boxes, scores, thr)


def check_nms(fn, verbose=True):
    """``fn(boxes, scores, iou_threshold)`` -> indices (int array) of the kept boxes, highest
    score first: greedy NMS, a box is dropped when its IoU with a kept box is > threshold.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9], [21, 21, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.6], np.float32)
    # IoU([0,0,4,2],[0,0,2,2]) ... exactly 0.5: kept, since only IoU > threshold suppresses
    edge = np.array([[0, 0, 4, 2], [0, 0, 2, 2], [2, 0, 4, 2]], np.float32)
    rng = _rng(18)
    cases = [Case("5 boxes in two clusters", (boxes, scores, 0.5)),
             Case("IoU exactly at the threshold (0.5) is kept", (edge, np.array([0.9, 0.8, 0.7], np.float32), 0.5)),
             Case("a chain: A suppresses B, so B cannot suppress C",
                  (np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], np.float32),
                   np.array([0.9, 0.8, 0.7], np.float32), 0.3))]
    for n, thr in [(30, 0.5), (60, 0.3)]:
        cases.append(Case(f"random {n} boxes, threshold {thr}",
                          (_random_boxes(rng, n, 40), rng.random(n).astype(np.float32), thr)))
    for c in cases:
        c.expected = _nms_ref(*c.args).astype(np.int64)

    def suppress_all(boxes, scores, thr):
        order = np.argsort(-scores, kind="stable")
        iou = _box_iou_ref(boxes, boxes)
        return np.array([i for i in order if not any(iou[i, j] > thr and scores[j] > scores[i]
                                                     for j in range(len(boxes)))], np.int64)

    def no_sort(boxes, scores, thr):
        keep, alive = [], np.ones(len(boxes), bool)
        iou = _box_iou_ref(boxes, boxes)
        for i in range(len(boxes)):
            if alive[i]:
                keep.append(i)
                alive &= iou[i] <= thr
        return np.array(keep, np.int64)

    mistakes = [("a suppressed box must not suppress others: only kept boxes remove their "
                 "neighbours (loop over what is left, not over all boxes)", suppress_all),
                ("visit the boxes from the highest score down (np.argsort(-scores))", no_sort),
                ("drop a box only when IoU > threshold (strictly)",
                 lambda b, s, t: _nms_ref(b, s, t - 1e-6)),
                ("remove suppressed boxes from the candidates: you kept boxes that overlap a "
                 "better one", lambda b, s, t: np.argsort(-s, kind="stable"))]
    return run_check("check_nms", fn, cases,
                     "order = argsort(-scores); while order: keep order[0], compute its IoU with the "
                     "rest, keep only those with IoU <= threshold", mistakes, verbose=verbose)


def _roi_ref(feat, box, output_size, sampling_ratio=2):
    import paddle
    from paddle.vision.ops import roi_align
    return roi_align(paddle.to_tensor(feat[None]), paddle.to_tensor(np.asarray(box, np.float32)[None]),
                     paddle.to_tensor([1], "int32"), output_size, spatial_scale=1.0,
                     sampling_ratio=sampling_ratio, aligned=True)[0].numpy()


def check_roi_align(fn, verbose=True):
    """``fn(feat, box, output_size, sampling_ratio=2)``: feat (C, H, W), one box (x0, y0, x1,
    y1) in pixels -> (C, ph, pw) as ``paddle.vision.ops.roi_align(aligned=True)``: each bin
    averages sampling_ratio x sampling_ratio bilinear samples at the centres of its sub-cells;
    the box is shifted by half a pixel; samples just outside are clamped to the border.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    from common.ops.boxes import roi_align_numpy

    ramp = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    rng = _rng(19)
    cases = [Case("6x6 ramp, box (1, 1, 5, 5), 2x2 bins", (ramp, (1, 1, 5, 5), 2)),
             Case("6x6 ramp, fractional box (0.5, 1.25, 3.5, 4), 3x2 bins",
                  (ramp, (0.5, 1.25, 3.5, 4.0), (3, 2))),
             Case("box touching the border (0, 0, 6, 6)", (ramp, (0, 0, 6, 6), 3)),
             Case("small corner box (0, 0, 2, 2), 4x4 bins: samples just outside, clamped",
                  (ramp, (0, 0, 2, 2), 4)),
             Case("box hanging over the bottom-right edge", (ramp, (3.2, 4.1, 7.5, 7.9), 3))]
    for c, hw, box, out, sr in [(2, (9, 11), (1.3, 2.1, 8.7, 7.9), 4, 2),
                                (3, (16, 12), (0.0, 3.0, 12.0, 15.5), (5, 3), 3),
                                (1, (8, 8), (2.2, 2.2, 4.4, 5.1), 7, 1)]:
        cases.append(Case(f"random C={c} {hw} box {box} -> {out}, {sr} samples",
                          (rng.standard_normal((c,) + hw).astype(np.float32), box, out),
                          dict(sampling_ratio=sr)))
    for case in cases:
        case.expected = _roi_ref(*case.args, **case.kwargs)

    def not_aligned(feat, box, out, sampling_ratio=2):
        return roi_align_numpy(feat, [box], out, sampling_ratio=sampling_ratio, aligned=False)[0]

    def rounded(feat, box, out, sampling_ratio=2):
        return roi_align_numpy(feat, [np.round(np.asarray(box, float))], out, sampling_ratio=sampling_ratio)[0]

    def no_clamp(feat, box, out, sampling_ratio=2):
        """Samples outside the map read zeros instead of the border pixel."""
        c, h, w = feat.shape
        pad = np.pad(feat, ((0, 0), (1, 1), (1, 1)))
        b = np.asarray(box, float) + 1
        return roi_align_numpy(pad, [b], out, sampling_ratio=sampling_ratio)[0]

    mistakes = [("aligned=True: shift the box by half a pixel (x - 0.5) so that pixel centres sit "
                 "at i + 0.5", not_aligned),
                ("do not round the box to the grid (that is RoIPool's flaw): sample at the exact "
                 "fractional positions", rounded),
                ("a sample up to one pixel outside reads the border pixel (clamp the position to "
                 "[0, H - 1]), not zero", no_clamp)]
    return run_check("check_roi_align", fn, cases,
                     "shift the box by -0.5; bin size = box size / output size; in bin (i, j) sample "
                     "at start + (i + (s + 0.5) / sr) * bin for s < sr; bilinear read with the position "
                     "clamped to [0, H - 1]; average the sr x sr samples", mistakes, verbose=verbose)


def _pq_ref(pred, target, things, stuffs):
    from common.metrics import panoptic_quality
    r = panoptic_quality(pred, target, things, stuffs)
    return dict(pq=r["pq"], sq=r["sq"], rq=r["rq"])


def check_pq(fn, verbose=True):
    """``fn(pred, target, things, stuffs)``: two panoptic maps (H, W) of ``category * LABEL_DIVISOR +
    instance`` (every pixel in a known category, no void) -> dict pq, sq, rq averaged over the
    categories that occur. Segments match when they share the category and IoU > 0.5; the
    instance id of a stuff category is ignored; RQ = TP / (TP + FP/2 + FN/2), SQ = mean IoU
    of the matches.

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    things, stuffs = [1, 2], [0]
    # hand-written maps spell ids out with LABEL_DIVISOR = 1000: 1001 = category 1, instance 1
    t = np.zeros((6, 8), np.int64)
    t[1:4, 1:4] = 1001
    t[1:4, 5:8] = 1002
    t[4:6, 0:3] = 2001
    p = t.copy()
    p[1:4, 4] = 1001             # car 1 grows by a column: IoU 9/12
    p[1:4, 5:7] = 1005           # car 2 found with IoU 6/9 under another id (ids need not agree)
    p[1:4, 7] = 1007             # the rest of car 2 as a small extra car: a false positive
    p[4:6, 0] = 0                # the person shrinks: IoU 4/6
    cases = [Case("6x8 scene: 2 cars, a person, background", (p, t, things, stuffs))]
    q, tq = np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64)
    q[:, :2] = 1001
    tq[:, 1:3] = 1001            # IoU 4/12: no match, one FP and one FN
    cases.append(Case("a car moved by one column: IoU 1/3 is no match", (q, tq, things, stuffs)))
    q2, tq2 = np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64)
    q2[:2, :] = 1003             # 8 pixels over a 4-pixel car: IoU exactly 0.5
    tq2[:2, :2] = 1001
    tq2[2:, :2] = 1002
    q2[2:, 2:] = 7               # stuff with an instance id: still the one segment of class 0
    cases.append(Case("IoU exactly 0.5 (4 of 8) is not a match; stuff instance ids ignored",
                      (q2, tq2, things, stuffs)))
    q3, tq3 = np.zeros((4, 4), np.int64), np.zeros((4, 4), np.int64)
    q3[:] = np.arange(4)[None]   # background predicted with instance ids 0..3 (one per column)
    q3[:2, :2] = tq3[:2, :2] = 1001
    cases.append(Case("stuff predicted with varying instance ids is still one segment",
                      (q3, tq3, things, stuffs)))
    for seed in (0, 1):
        r = _rng(100 + seed)
        tgt = np.full((24, 24), 3 * LABEL_DIVISOR, np.int64)
        for i in range(1, 6):
            y, x = r.integers(0, 18, 2)
            tgt[y:y + 6, x:x + 6] = int(r.choice([1, 2])) * LABEL_DIVISOR + i
        prd = tgt.copy()
        for i in range(1, 6):                  # move some instances sideways by up to 3 pixels
            inst = tgt % LABEL_DIVISOR == i
            if inst.any() and r.random() < 0.6:
                prd[np.roll(inst, int(r.integers(-3, 4)), axis=1)] = tgt[inst][0] + 10
        cases.append(Case(f"random 24x24 scene {seed}", (prd, tgt, things, stuffs + [3])))
    for c in cases:
        c.expected = _pq_ref(*c.args)

    def pq_variant(pred, target, things, stuffs, thresh=0.5, strict=True, stuff_ids=True):
        cats = list(things) + list(stuffs)

        def segs(m):
            cat = m // LABEL_DIVISOR
            return np.where(np.isin(cat, things) | (not stuff_ids), m, cat * LABEL_DIVISOR)
        ps, ts = segs(pred), segs(target)
        tp = dict.fromkeys(cats, 0)
        fp, fn, ious = dict(tp), dict(tp), {c: 0.0 for c in cats}
        matched_p = set()
        for g in np.unique(ts):
            best, bi = None, 0.0
            for p_ in np.unique(ps):
                if p_ // LABEL_DIVISOR != g // LABEL_DIVISOR or p_ in matched_p:
                    continue
                inter = np.sum((ts == g) & (ps == p_))
                iou = inter / np.sum((ts == g) | (ps == p_))
                ok = iou > thresh if strict else iou >= thresh
                if ok and iou > bi:
                    best, bi = p_, iou
            if best is None:
                fn[g // LABEL_DIVISOR] += 1
            else:
                matched_p.add(best)
                tp[g // LABEL_DIVISOR] += 1
                ious[g // LABEL_DIVISOR] += bi
        for p_ in np.unique(ps):
            if p_ not in matched_p:
                fp[p_ // LABEL_DIVISOR] += 1
        rows = []
        for c in cats:
            if tp[c] + fp[c] + fn[c]:
                sq = ious[c] / tp[c] if tp[c] else 0.0
                rq = tp[c] / (tp[c] + fp[c] / 2 + fn[c] / 2)
                rows.append((sq * rq, sq, rq))
        pq, sq, rq = np.mean(rows, 0)
        return dict(pq=pq, sq=sq, rq=rq)

    mistakes = [("a match needs IoU > 0.5 (that threshold makes matches unique); without it "
                 "every overlapping pair counts", lambda *a: pq_variant(*a, thresh=0.0)),
                ("the threshold is strict: IoU exactly 0.5 is not a match",
                 lambda *a: pq_variant(*a, strict=False)),
                (f"a stuff category is one segment whatever its instance id: use category * {LABEL_DIVISOR}",
                 lambda *a: pq_variant(*a, stuff_ids=False))]
    return run_check("check_pq", fn, cases,
                     f"segments = unique values (stuff: category * {LABEL_DIVISOR}); for each pair of the same "
                     "category IoU > 0.5 is a TP; unmatched targets are FN, unmatched predictions FP; "
                     "per category SQ = sum IoU / TP, RQ = TP / (TP + FP/2 + FN/2); average over the "
                     "categories with any TP, FP or FN", mistakes, verbose=verbose)


def check_grouping(fn, verbose=True):
    """``fn(centers, offset, thing_mask)``: centres (k, 2) as (y, x), offsets (2, H, W) as
    (dy, dx), thing_mask (H, W) bool -> instance ids (H, W): each thing pixel gets 1 + the index
    of the centre nearest to (y + dy, x + dx); 0 elsewhere (Panoptic-DeepLab's grouping).

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).
    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """
    from common.models.panoptic_deeplab import group_pixels

    yy, xx = np.mgrid[0:4, 0:6].astype(np.float32)
    centers = np.array([[1, 1], [2, 4]])
    # each pixel points to the centre of its own half (left: (1, 1), right: (2, 4))
    tgt = np.where(xx < 3, 0, 1)
    offset = np.stack([centers[tgt, 0] - yy, centers[tgt, 1] - xx]).astype(np.float32)
    mask = np.ones((4, 6), bool)
    mask[0, 0] = False
    rng = _rng(21)
    cases = [Case("4x6, two centres, exact offsets, one stuff pixel", (centers, offset, mask)),
             Case("no centre at all", (np.zeros((0, 2), np.int64), offset, mask))]
    for (h, w), k in [((9, 13), 3), ((16, 16), 6)]:
        cen = np.stack([rng.integers(0, h, k), rng.integers(0, w, k)], 1)
        off = rng.normal(0, 3, (2, h, w)).astype(np.float32)
        cases.append(Case(f"random {h}x{w}, {k} centres, noisy offsets",
                          (cen, off, rng.random((h, w)) < 0.6)))
    for c in cases:
        c.expected = group_pixels(*c.args).astype(np.int64)

    mistakes = [("offsets are (dy, dx): the pixel points to (y + offset[0], x + offset[1])",
                 lambda c, o, m: group_pixels(c, o[::-1], m)),
                ("add the offset (the pixel points *to* its centre): y + dy, not y - dy",
                 lambda c, o, m: group_pixels(c, -o, m)),
                ("ids start at 1 (0 means 'no instance'): 1 + the index of the nearest centre",
                 lambda c, o, m: np.where(m, group_pixels(c, o, m) - 1, 0)),
                ("only thing pixels get an instance: leave 0 where thing_mask is False",
                 lambda c, o, m: group_pixels(c, o, np.ones_like(m)))]
    return run_check("check_grouping", fn, cases,
                     "yy, xx = np.mgrid[0:H, 0:W]; pointed = (yy + dy, xx + dx) at the thing pixels; "
                     "squared distances to every centre (P, k); ids = argmin + 1", mistakes,
                     verbose=verbose)


ALL_CHECKS = [name for names in DAYS.values() for name in names]


def _guarded(check):
    """Keep the caller's Paddle random state (checks seed their own layers) and turn an
    error of the check itself into a reported failure: nothing escapes into the notebook."""
    import functools

    @functools.wraps(check)
    def wrapper(fn, *args, verbose=True, **kwargs):
        import paddle

        state = paddle.get_rng_state()
        try:
            return check(fn, *args, verbose=verbose, **kwargs)
        except Exception as exc:   # a bug of the check, not of the student
            return _finish(check.__name__, FAILED, f"✗ {check.__name__}: the check itself failed "
                           f"({type(exc).__name__}: {exc}); please tell the instructor", verbose=verbose)
        finally:
            paddle.set_rng_state(state)
    return wrapper


for _name in ALL_CHECKS:
    globals()[_name] = _guarded(globals()[_name])
