"""The check framework of the homework (每日打卡): cases, comparison, verdicts, registration.

A check is a function ``check_x(fn, verbose=True)`` decorated with ``@check(day)``: it builds
``Case``s (hand examples first, then random shapes), sets each one's ``expected`` from the
course's reference, and ends in ``run_check``, which runs the student's ``fn`` on every case
and reports the first failure with a hint. ``@check`` registers the check under its day in
``DAYS`` and guards it: the caller's Paddle random state is kept, and an error of the check
itself is reported as a failure instead of escaping into the notebook.
"""
from __future__ import annotations

import functools
import traceback
from dataclasses import asdict, dataclass, field

import numpy as np
import paddle

from common.lang import N_, _, ngettext

PASSED, FAILED, NOT_DONE = "passed", "failed", "not done"

# day folder -> names of its checks, in the order of its exercises notebook (filled by @check)
DAYS: dict = {}
RESULTS: dict = {}

_ARGS_DOC = """

    Args:
        fn: the student's function, called on hand-made and random cases as described above.
        verbose: print the verdict (and the first failing case with a hint).

    Returns:
        a ``CheckResult`` (name, status, message, cases), also kept in ``results()``.
    """


def check(day):
    """Register a check under ``day`` (a day folder, e.g. ``"day1_concepts"``) and guard it.

    Args:
        day: the folder whose ``exercises.ipynb`` runs the check.

    Returns:
        a decorator for ``check_x(fn, verbose=True)``.
    """
    def register(fn_check):
        name = fn_check.__name__
        fn_check.__doc__ = (fn_check.__doc__ or "").rstrip() + _ARGS_DOC

        @functools.wraps(fn_check)
        def guarded(fn, *args, verbose=True, **kwargs):
            state = paddle.get_rng_state()    # checks seed their own layers
            try:
                return fn_check(fn, *args, verbose=verbose, **kwargs)
            except Exception as exc:   # a bug of the check, not of the student
                return _finish(name, FAILED, _("✗ {name}: the check itself failed ({error}); please tell "
                                               "the instructor").format(name=name, error=_error(exc)),
                               verbose=verbose)
            finally:
                paddle.set_rng_state(state)

        DAYS.setdefault(day, []).append(name)
        return guarded
    return register


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


_RESULT = N_("result")     # what ``compare`` calls the student's answer (translated when printed)


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


def compare(expected, actual, atol=1e-4, rtol=1e-4, where=_RESULT):
    """None when ``actual`` matches ``expected`` (arrays, numbers, tuples, dicts), else a
    sentence saying what differs (shape, type, or values with an example)."""
    where = _(where)
    actual = _numpy(actual)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return _("{where}: expected a dict with keys {keys}, got {type}").format(
                where=where, keys=sorted(expected), type=type(actual).__name__)
        for k in expected:
            if k not in actual:
                return _("{where}: key {key} is missing (expected keys {keys})").format(
                    where=where, key=repr(k), keys=sorted(expected))
            msg = compare(expected[k], actual[k], atol, rtol, f"{where}[{k!r}]")
            if msg:
                return msg
        return None
    if isinstance(expected, tuple):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            return _("{where}: expected a tuple of {n}, got {got}").format(
                where=where, n=len(expected), got=_describe(actual))
        for i, (e, a) in enumerate(zip(expected, actual)):
            msg = compare(e, a, atol, rtol, f"{where}[{i}]")
            if msg:
                return msg
        return None
    exp = np.asarray(expected)
    try:
        act = np.asarray(actual, dtype=np.float64 if exp.dtype.kind == "f" else None)
    except (TypeError, ValueError):
        return _("{where}: expected a number or array, got {type}").format(where=where, type=type(actual).__name__)
    if act.dtype == object:
        return _("{where}: expected a number or array, got {type}").format(where=where, type=type(actual).__name__)
    if exp.ndim == 0 and act.size == 1:
        act = act.reshape(())
    if act.shape != exp.shape:
        msg = (_("{where}: shape {shape}, expected {expected} (the same sizes in another order: axes swapped?)")
               if sorted(act.shape) == sorted(exp.shape) else _("{where}: shape {shape}, expected {expected}"))
        msg = msg.format(where=where, shape=act.shape, expected=exp.shape)
        if 0 < exp.size <= 48 and 0 < act.size <= 48:
            msg += _both(exp, act)
        return msg
    e, a = exp.astype(np.float64), act.astype(np.float64)
    bad = ~(np.isclose(a, e, atol=atol, rtol=rtol) | (np.isnan(a) & np.isnan(e)))
    if not bad.any():
        return None
    n = int(bad.sum())
    if exp.ndim == 0:
        return _("{where}: expected {expected}, yours {yours}").format(
            where=where, expected=f"{float(e):.6g}", yours=f"{float(a):.6g}")
    if exp.size <= 48:
        return _("{where}: {n} of {size} values differ").format(where=where, n=n, size=exp.size) + _both(exp, act)
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return _("{where}: {n} of {size} values differ; first at index {index}: expected {expected}, yours {yours} "
             "(largest difference {largest})").format(
        where=where, n=n, size=exp.size, index=idx, expected=f"{e[idx]:.6g}", yours=f"{a[idx]:.6g}",
        largest=f"{np.nanmax(np.abs(np.where(bad, a - e, 0))):.4g}")


def _both(exp, act):
    """The expected and the student's arrays in full, one below the other."""
    return f"\n  {_('expected:')}\n{_indent(_fmt(exp))}\n  {_('yours:')}\n{_indent(_fmt(act))}"


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
        return _finish(name, FAILED, _("✗ {name}: expected a function, got {type}").format(
            name=name, type=type(fn).__name__), verbose=verbose)
    for i, case in enumerate(cases):
        # desc, inputs and hints come from the day modules: marked with N_() there, translated here
        head = _("✗ {name}: case {i} of {n} ({desc}) failed").format(name=name, i=i + 1, n=len(cases),
                                                                     desc=_(case.desc))
        inputs = "  " + _("inputs: {inputs}").format(inputs=_(_describe_inputs(case)))
        try:
            actual = call(fn, case)
        except NotImplementedError:
            return _finish(name, NOT_DONE, _("… {name}: not done yet (the function still raises "
                                             "NotImplementedError: replace the stub with your code)").format(
                name=name), verbose=verbose)
        except Exception as exc:   # the student's bug, reported, never raised
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            raised = (_("your function raised {error} (line {lineno}: {line})") if frame.line else
                      _("your function raised {error}")).format(error=_error(exc), lineno=frame.lineno,
                                                                 line=frame.line)
            return _finish(name, FAILED, f"{head}\n{inputs}\n  {raised}\n  {_hint(general_hint)}",
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
        return _finish(name, FAILED, f"{head}\n{inputs}\n  {problem}\n  {_hint(hint)}", verbose=verbose)
    n = len(cases)
    return _finish(name, PASSED, ngettext("✓ {name}: passed {n} case", "✓ {name}: passed {n} cases", n).format(
        name=name, n=n), n, verbose)


def _hint(hint):
    return _("hint: {hint}").format(hint=_(hint))


def _error(exc):
    return f"{type(exc).__name__}: {exc}"


def _rng(seed=0):
    return np.random.default_rng(seed)
