"""Train a segmentation model of the course on your own images or a public dataset.

    python -m common.train --dataset folder --root my_set --num-classes 3 --out runs/mine

trains DeepLab V3+ (or any semantic model of ``common.models``) on ``my_set/train`` and
scores it on ``my_set/val``. The run folder ``--out`` receives:

- ``checkpoint.pdckpt``: weights, optimiser, iteration; ``--resume`` continues the run
  from it and ends with the weights of a run never stopped;
- ``best_model/`` (best validation mIoU) and, at the end, ``final_model/``: folders
  ``python -m common.predict --model`` and ``python -m common.evaluate --model`` take;
- ``metrics.jsonl`` (one JSON line per evaluation: loss, mIoU, mAcc, per-class IoU),
  ``curves.png`` (loss and mIoU), ``config.yaml`` (the settings, reusable with
  ``--config``) and ``run.json`` (processes, Paddle version, command).

Every input is checked before the first step: the dataset layout, every label against its
image and the class count, the crop against the image sizes, the model's output, and the
run folder (never overwritten unless ``--overwrite``).

Several GPUs (or machines) run through Paddle's own launcher, one process per GPU, with
this file as the script (the launcher takes a file, not ``-m``):

    python -m paddle.distributed.launch --gpus 0,1,2,3 common/train.py ...same options...

Each process trains on its share of every global batch (``--batch-size`` counts all
processes), BatchNorm statistics are those of the global batch (``common.distributed``),
and only the first process (rank 0) evaluates, logs and writes files.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:     # run as a file, as the launcher does
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    __package__ = "common"                          # PEP 366: the relative imports below work
    import common  # noqa: F401  (before Paddle loads: its CPU threads, its notices silenced)

from .options import run_cli
from .runs import PROG, settings_of


def main(argv=None):
    """Run the command: the settings and the run folder checked (without Paddle), then the run.

    Args:
        argv: the arguments without the program name; None reads ``sys.argv``.

    Returns:
        the trainer (its ``model``, ``history``, ``it``), or None after ``--dry-run``.

    Raises:
        OptionError (a ValueError): a setting, the data, the model or the run folder
            cannot be used; the message names the option or file and what was expected.
    """
    s, folder = settings_of(argv)
    from .training import run  # Paddle (seconds to import): the settings and --help first

    return run(s, folder, argv)


if __name__ == "__main__":
    run_cli(main, PROG)
