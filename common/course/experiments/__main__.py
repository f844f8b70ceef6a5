"""``python -m common.course.experiments [--fast] [NAME ...]``: run the named experiments (default: all).

Prints each experiment's table and the total seconds; writes ``results/<name>.json``
(``build/experiments-fast/`` with ``--fast`` or ``SEGCOURSE_FAST=1``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from common import runtime
from common.course import experiments


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.course.experiments", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="experiments to run (default: all)")
    parser.add_argument("--fast", action="store_true", help="tiny sizes (as CI); writes build/experiments-fast/")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if args.fast:
        os.environ["SEGCOURSE_FAST"] = "1"   # read by runtime.is_fast() and the experiments' sizes

    names = experiments.available()
    if args.list:
        print("\n".join(names))
        return 0
    wanted = args.names or names
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown experiment(s) {', '.join(unknown)}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    fast = args.fast or runtime.is_fast()
    t0 = time.perf_counter()
    for name in wanted:
        t = time.perf_counter()
        result = experiments.get(name).main(fast=fast)
        print(experiments.table(result))
        print(f"  {name}: {time.perf_counter() - t:.1f} s -> "
              f"{experiments.default_out_dir(fast) / (name + '.json')}\n", flush=True)
    print(f"experiments: {len(wanted)} run in {time.perf_counter() - t0:.1f} s total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
