"""What a class waits for: each notebook's longest cell and total, from its committed outputs.

Jupyter records when each cell started and finished (``metadata.execution``, written by
``make notebooks``), so the committed notebooks carry their own timing. This reads it:

    python -m common.course.timing                      # the working tree
    python -m common.course.timing --rev a4e9193        # the notebooks as committed at a revision
    python -m common.course.timing --record results/notebook_times.json
    python -m common.course.timing --cpu day3_unet_psp/01_unet.ipynb   # run it, count CPU seconds

``--cpu`` executes a copy of each notebook in CPU mode (the committed file is not touched) and
prints each slow cell's wall and CPU seconds. CPU seconds barely depend on what else the machine
runs, so on a shared machine they bound what a quiet one shows: a cell of 60 CPU seconds takes at
most about 60 s of wall time on a quiet machine, whatever its thread count.

``--record`` writes the table with the machine it was measured on (cores, threads, CPU model),
so a time quoted in the README has a source. Times are only as quiet as the run that made them:
re-execute with nothing else running before recording.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from unittest import mock

from common import runtime
from common.course.paths import checkout

GOALS = dict(cell=60.0, notebook=180.0, course=900.0)   # issue 25: seconds of cell time


def _parse(stamp):
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))      # Python < 3.11 refuses "Z"


def _seconds(start, end):
    return (_parse(end) - _parse(start)).total_seconds()


def cell_times(notebook):
    """Seconds each code cell ran (None where the notebook holds no record), from parsed JSON."""
    times = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        ex = cell.get("metadata", {}).get("execution", {})
        start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
        times.append(_seconds(start, end) if start and end else None)
    return times


def _notebooks(root, rev):
    if rev is None:
        for path in sorted(root.glob("day*/*.ipynb")):
            yield path.relative_to(root).as_posix(), json.loads(path.read_text(encoding="utf-8"))
        return
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev], cwd=root,
                           check=True, capture_output=True, text=True).stdout.split()
    for name in sorted(n for n in names if n.startswith("day") and n.endswith(".ipynb")):
        text = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=root, check=True,
                              capture_output=True, text=True).stdout
        yield name, json.loads(text)


def table(root=None, rev=None):
    """One row per notebook: longest cell (s), its index among the code cells, total (s)."""
    rows = []
    for name, nb in _notebooks(Path(root or checkout()), rev):
        times = [t or 0.0 for t in cell_times(nb)]
        longest = max(range(len(times)), key=times.__getitem__) if times else 0
        rows.append(dict(notebook=name, longest=round(max(times, default=0.0), 1), longest_cell=longest,
                         total=round(sum(times), 1), recorded=sum(t > 0 for t in times), cells=len(times)))
    return rows


_PROBE = """\
import time as _t, json as _j
_cpu_log = []
def _pre(*_a):
    _cpu_log.append([_t.perf_counter(), _t.process_time()])
def _post(*_a):
    if _cpu_log:
        _cpu_log[-1] = [_t.perf_counter() - _cpu_log[-1][0], _t.process_time() - _cpu_log[-1][1]]
get_ipython().events.register("pre_run_cell", _pre)
get_ipython().events.register("post_run_cell", _post)
"""


def cpu_times(path, timeout=1800):
    """Execute a copy of notebook ``path`` in CPU mode; (wall, cpu) seconds of each code cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    n = sum(c.cell_type == "code" for c in nb.cells)
    nb.cells.insert(0, nbformat.v4.new_code_cell(_PROBE))
    nb.cells.append(nbformat.v4.new_code_cell("print(_j.dumps(_cpu_log[:-1]))"))
    with mock.patch.dict(os.environ, SEGCOURSE_FAST="0"):     # the kernel inherits it; restored after
        os.environ.pop("MPLBACKEND", None)                    # the inline backend, as in the lab
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources=dict(metadata=dict(path=str(Path(path).parent)))).execute()
    times = json.loads(nb.cells[-1].outputs[-1]["text"])
    assert len(times) == n, (len(times), n)
    return times


def machine():
    """Where a time was measured: CPU model, cores, OMP threads, Python, and the load average
    (1 min) when called; a time taken at a load above the core count was shared with other jobs."""
    return dict(cpu=runtime.cpu_model(), cores=os.cpu_count(), omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                python=platform.python_version(), load_average=round(os.getloadavg()[0], 2))


def render(rows):
    lines = [f"{'notebook':52s} {'longest':>8s} {'total':>8s}"]
    for r in rows:
        flag = " *" if r["longest"] > GOALS["cell"] or r["total"] > GOALS["notebook"] else ""
        lines.append(f"{r['notebook']:52s} {r['longest']:7.1f}s {r['total']:7.1f}s{flag}")
    total = sum(r["total"] for r in rows)
    lines.append(f"{'whole course (' + str(len(rows)) + ' notebooks)':52s} {'':8s} {total:7.1f}s")
    lines.append(f"* over a goal: a cell over {GOALS['cell']:.0f} s or a notebook over {GOALS['notebook']:.0f} s "
                 f"(course goal {GOALS['course']:.0f} s)")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m common.course.timing", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", help="read the notebooks as committed at this git revision")
    ap.add_argument("--record", metavar="JSON", help="write the table and the machine to this file")
    ap.add_argument("--cpu", nargs="+", metavar="NOTEBOOK", help="execute copies of these notebooks "
                    "and print each cell's wall and CPU seconds (cells over 5 s)")
    args = ap.parse_args(argv)
    if args.cpu:
        for path in args.cpu:
            times = cpu_times(path)
            print(f"{path}: wall {sum(w for w, _ in times):.1f} s, CPU {sum(c for _, c in times):.1f} s, "
                  f"longest cell CPU {max(c for _, c in times):.1f} s")
            for i, (wall, cpu) in enumerate(times):
                if wall > 5 or cpu > 5:
                    print(f"   code cell {i:3d}: wall {wall:6.1f} s, CPU {cpu:6.1f} s")
        return 0
    rows = table(rev=args.rev)
    print(render(rows))
    if args.record:
        out = dict(machine=machine(), rev=args.rev or "working tree", goals=GOALS, notebooks=rows,
                   total=round(sum(r["total"] for r in rows), 1),
                   note="seconds of cell time from each notebook's metadata.execution (make notebooks)")
        Path(args.record).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
