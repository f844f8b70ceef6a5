"""Check-in (打卡): run a student's exercises notebooks and report what passes.

    python -m common.course.checkin [PATH ...] [--out checkin.json]      (``make checkin``)

Each PATH is an ``exercises.ipynb``, a day folder holding one, or a folder of day folders
(a student release; default: the current folder). Every notebook is executed top to bottom
in a fresh kernel (a cell that raises does not stop the rest); the results the checks of
``common.course.exercises`` recorded are read back, and a per-day table of passed / not yet is
printed, with one line under it for each failed check: the case that failed and what differed.
A small JSON summary (statuses only: no code, no outputs, no names) is written for a course
platform to collect. Nothing is uploaded: handing it in is the student's choice.
The notebooks themselves are not modified.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import nbformat

from common.lang import N_, language, translation

NOTEBOOK = "exercises.ipynb"
_MARK = "__SEGCOURSE_CHECKIN__"
# the statuses of a check as the table shows them (the JSON keeps the English words)
STATUS_WORDS = (N_("passed"), N_("failed"), N_("not done"), N_("not run"))
_COLLECT = ("import json as _json\nfrom common.course import exercises as _ex\n"
            f"print({_MARK!r} + _json.dumps(_ex.results()))")


def find_notebooks(paths):
    """Exercises notebooks under ``paths`` (files, day folders or release folders), sorted."""
    found = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif (p / NOTEBOOK).is_file():
            found.append(p / NOTEBOOK)
        elif p.is_dir():
            found += sorted(p.glob(f"day*/{NOTEBOOK}"))
        else:
            raise FileNotFoundError(f"{p} does not exist")
    if not found:
        raise FileNotFoundError(f"no {NOTEBOOK} found under {', '.join(map(str, paths))}")
    return found


def run_notebook(path, timeout=600, kernel_name="python3"):
    """Execute one notebook; returns dict day, notebook, checks {name: status}, errors
    (cells that raised, outside the checks), seconds."""
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_COLLECT))
    start = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    # the kernel's stderr carries only Jupyter's transport notices: keep the table readable
    client.execute(stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    recorded, errors = [], []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"cell {i + 1}: {out.get('ename')}: {out.get('evalue')}")
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            for line in text.splitlines():
                if line.startswith(_MARK):
                    recorded = json.loads(line[len(_MARK):])
    day = path.parent.name
    from common.course.exercises import DAYS  # Paddle: the checks import it; --help first

    checks = {name: "not run" for name in DAYS.get(day, [])}
    checks.update({r["name"]: r["status"] for r in recorded})
    reasons = {r["name"]: failure_reason(r.get("message", "")) for r in recorded if r["status"] == "failed"}
    return dict(day=day, notebook=str(path), checks=checks, reasons=reasons, errors=errors,
                seconds=round(seconds, 1))


def failure_reason(message):
    """Why a check failed, in one line: its failing case and the first line that says what
    went wrong (the difference found or the error raised), without the hint.

    Args:
        message: the ``CheckResult.message`` of a failed check.

    Returns:
        str, e.g. ``case 2 of 5 (class 2 absent ...): result['miou']: expected 0.5, yours 0.4``.
    """
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    if not lines:
        return "failed"
    head = lines[0].split(": ", 1)[-1]
    head = head[:-len(" failed")] if head.endswith(" failed") else head
    what = next((ln for ln in lines[1:] if not ln.startswith(("inputs:", "hint:", "expected:", "yours:"))), "")
    reason = f"{head}: {what}" if what else head
    return reason if len(reason) <= 200 else reason[:199] + "…"


def summary(runs):
    """The JSON-able check-in summary of several ``run_notebook`` results."""
    days = {}
    for r in runs:
        passed = sum(s == "passed" for s in r["checks"].values())
        days[r["day"]] = dict(passed=passed, total=len(r["checks"]), checks=r["checks"],
                              errors=len(r["errors"]))
    total = sum(d["total"] for d in days.values())
    return dict(format="segcourse-checkin/1", created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                passed=sum(d["passed"] for d in days.values()), total=total, days=days)


def _width(text):
    """Columns ``text`` takes in a terminal (a Chinese character takes two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def format_table(runs, lang=None):
    """The per-day table of passed / not yet, in ``lang`` (default: the language of the
    edition the first notebook belongs to, ``common.lang.language``)."""
    _ = translation(lang or language(Path(runs[0]["notebook"]).parent if runs else None)).gettext
    rows = [(_("day"), _("passed"), _("not yet"))]
    for r in runs:
        passed = [n for n, s in r["checks"].items() if s == "passed"]
        todo = [_("{check} ({status})").format(check=n.removeprefix("check_"), status=_(s))
                for n, s in r["checks"].items() if s != "passed"]
        rows.append((r["day"], f"{len(passed)}/{len(r['checks'])}", _(", ").join(todo) or "-"))
    w0, w1 = max(_width(r[0]) for r in rows), max(_width(r[1]) for r in rows)
    lines = [a + " " * (w0 - _width(a) + 2) + " " * (w1 - _width(b)) + b + "  " + c for a, b, c in rows]
    lines.insert(1, "-" * min(100, max(_width(x) for x in lines)))
    for r in runs:
        for name, why in r.get("reasons", {}).items():
            lines.append(f"  {r['day']}: {name.removeprefix('check_')} failed at {why}")
        for e in r["errors"]:
            lines.append(f"  {r['day']}: {e}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", default=["."], help="notebooks or folders (default: .)")
    ap.add_argument("--out", default=None, help="JSON summary (default: checkin.json in the "
                    "first folder given)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = ap.parse_args(argv)
    first = Path(args.paths[0])
    lang = language(first)      # the student's edition: the release folder's marker
    _ = translation(lang).gettext
    try:
        notebooks = find_notebooks(args.paths)
    except FileNotFoundError as exc:
        print(_("error: {error}").format(error=exc), file=sys.stderr)
        return 2
    runs = []
    for nb in notebooks:
        print(_("running {notebook} ...").format(notebook=nb), flush=True)
        runs.append(run_notebook(nb, args.timeout))
    print(format_table(runs, lang))
    out = Path(args.out) if args.out else (first if first.is_dir() else first.parent) / "checkin.json"
    data = summary(runs)
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(_("{passed}/{total} checks passed; summary in {path} (not uploaded)").format(
        passed=data["passed"], total=data["total"], path=out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
