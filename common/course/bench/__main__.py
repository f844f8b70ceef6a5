"""``python -m common.course.bench [COMMAND] [options]``: the benchmarks (see ``common.course.bench``)."""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from common import runtime

COMMANDS = ("models", "paddleseg", "engines", "predict-cli", "gpu")
# studies with their own options (`python -m common.course.bench NAME --help`)
STUDIES = {
    "onednn": "whether training can use oneDNN's convolutions (see common.course.bench.onednn)",
    "time-to-target": "the course vs PaddleSeg's trainer to the same held-out mIoU "
                      "(see common.course.bench.time_to_target; needs paddleseg importable)",
}


def parse_args(argv=None):
    """The command (default ``models``) and its options."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS + tuple(STUDIES) + ("-h", "--help"):
        argv = ["models"] + argv
    p = argparse.ArgumentParser(prog="python -m common.course.bench", description=__doc__.split(":")[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    m = sub.add_parser("models", help="threads, data speed, each model's train / infer img/s (default)")
    m.add_argument("--size", type=int, default=96, help="image side")
    m.add_argument("--batch", type=int, default=4)
    m.add_argument("--steps", type=int, default=5)
    m.add_argument("--models", nargs="*", help="names of BENCH_MODELS (default all)")
    m.add_argument("--skip-threads", action="store_true")
    m.add_argument("--thread-repeats", type=int, default=3, help="interleaved rounds of the thread comparison")
    ps = sub.add_parser("paddleseg", help="ours vs PaddleSeg's models (needs paddleseg importable)")
    ps.add_argument("--size", type=int, nargs="+", default=[128, 256], help="image sides")
    ps.add_argument("--batch", type=int, default=2)
    ps.add_argument("--steps", type=int, default=2)
    ps.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    ps.add_argument("--models", nargs="*", help="names of PADDLESEG_PAIRS (default all)")
    e = sub.add_parser("engines", help="common.deploy's engines against each other, interleaved")
    e.add_argument("--models", nargs="+", help="names of BENCH_MODELS (default five semantic ones)")
    e.add_argument("--sizes", nargs="+", type=int, default=[96, 128, 256])
    e.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    e.add_argument("--repeats", type=int, default=7)
    e.add_argument("--steps", type=int, default=3)
    e.add_argument("--engines", nargs="+", default=["dynamic", "folded", "static", "inference"])
    e.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="elapsed time, or this process's CPU time (steadier on a busy machine)")
    c = sub.add_parser("predict-cli", help="whole `python -m common.predict` runs on four photos")
    c.add_argument("--models", nargs="+", default=["deeplabv3plus", "unet"])
    c.add_argument("--repeats", type=int, default=2)
    for name, text in STUDIES.items():
        sub.add_parser(name, help=text, add_help=False)
    g = sub.add_parser("gpu", help="on a GPU: each model trains a few mixed-precision steps and predicts")
    g.add_argument("--size", type=int, default=256)
    g.add_argument("--batch", type=int, default=8)
    g.add_argument("--steps", type=int, default=5)
    g.add_argument("--models", nargs="*", help="names of BENCH_MODELS (default all)")
    return p, p.parse_args(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in STUDIES:
        from . import onednn, time_to_target  # Paddle (seconds to import): --help needs none
        return {"onednn": onednn, "time-to-target": time_to_target}[argv[0]].main(argv[1:])
    p, a = parse_args(argv)
    import paddle

    from . import engines, gpu, paddleseg, throughput  # Paddle (seconds to import): --help needs none

    def say(s):
        print(s, flush=True)
    if a.command == "gpu":
        return gpu.check_all(a.size, a.batch, a.steps, a.models)
    if a.command == "paddleseg":
        return paddleseg.bench_paddleseg(a.size, a.batch, a.steps, a.repeats, a.models)
    if a.command == "models":
        say(runtime.cpu_info())
        if not a.skip_threads:
            throughput.bench_threads(a.thread_repeats)
        throughput.bench_data(a.size, a.batch)
        return throughput.bench_models(a.models, a.size, a.batch, a.steps)
    head = (f"Paddle {paddle.__version__}, {os.environ.get('OMP_NUM_THREADS')} threads, "
            f"load average {os.getloadavg()[0]:.1f}; ")
    if a.command == "predict-cli":
        say(head + f"python -m common.predict on {', '.join(engines.CLI_PHOTOS)}, seconds "
            f"(min-max of {a.repeats} rounds)")
        return engines.bench_cli(a.models, a.repeats, out=say)
    wrong = [e for e in a.engines if e not in engines.ENGINES]
    if wrong:
        p.error(f"unknown engines {wrong}; choose from {list(engines.ENGINES)}")
    models = None
    if a.models:
        known = dict(throughput.BENCH_MODELS)
        unknown = [m for m in a.models if m not in known]
        if unknown:
            p.error(f"unknown models {unknown}; choose from {sorted(known)}")
        models = [(m, known[m]) for m in a.models]
    paddle.set_device("cpu")
    warnings.filterwarnings("ignore", category=UserWarning, module="paddle")
    say(head + f"min/median {a.clock} ms per image, x = speed-up over {a.engines[0]} (median)")
    return engines.bench_engines(models, a.sizes, a.batches, a.repeats, a.steps, tuple(a.engines),
                                 out=say, clock=a.clock)


if __name__ == "__main__":
    status = main()
    sys.exit(status if isinstance(status, int) else 0)
