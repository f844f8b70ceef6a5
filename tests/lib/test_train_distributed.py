"""common/train.py under Paddle's own launcher: two CPU processes (gloo) train what one process
trains on the same global batch, only rank 0 writes, and a two-process run stopped and resumed
ends exactly as one never stopped.

The model is DeepLab V3+ with BatchNorm, so the processes' BatchNorm statistics must be those of
the global batch (``AllReduceBatchNorm`` on the CPU). The crops fit inside every rescaled image,
so each process's share has the same number of labelled pixels: then the mean of the two
shares' losses (what data parallel minimises) is the loss of the global batch.

What is measured (OMP_NUM_THREADS=1, DeepLab V3+ ResNet-18 width 8, 4 images of 32 px per
step, SGD lr 0.01, 6 steps): the first step's loss is the same to the last digit in both runs
(3.28835106; with each process normalising by its own two images it would be 3.34838, 0.06
away); over 6 steps the losses differ by at most 4.4e-5 (1.3e-5 relative) and the weights by
1.1e-4 (running variances; 3.1e-5 for the trained weights, which moved by up to 0.08): float32
sums taken in another order. The tolerances below are 10x that.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from voc_layout import run_args, write_voc

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, OMP_NUM_THREADS="1")
LOSS_TOL, WEIGHT_TOL = 5e-4, 1e-3

pytestmark = pytest.mark.slow          # four runs of 10-20 s each on 2 cores


def launch(log_dir, *args, processes=2):
    """``python -m paddle.distributed.launch --nproc_per_node N common/train.py ARGS``, the
    README's command (on a GPU machine ``--gpus 0,1`` instead of ``--nproc_per_node``);
    returns the workers' logs."""
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(processes),
           "--log_dir", str(log_dir), "common/train.py", *map(str, args)]
    r = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    logs = "\n".join(p.read_text() for p in sorted(Path(log_dir).glob("workerlog.*")))
    assert r.returncode == 0, logs[-4000:] + r.stderr[-2000:]
    return logs


def checkpoint(out):
    """(loss of each step, weights) of a run's checkpoint."""
    ckpt = paddle.load(str(out / "checkpoint.pdckpt"))
    return np.array(ckpt["history"]["loss"]), {k: v.numpy() for k, v in ckpt["model"].items()}


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return write_voc(tmp_path_factory.mktemp("voc") / "VOC2012", n_train=8, n_val=3, size=48)


@pytest.fixture(scope="module")
def two_processes(voc, tmp_path_factory):
    """A 6-step run of two processes, 2 of the global batch of 4 each: (folder, logs)."""
    tmp = tmp_path_factory.mktemp("two")
    return tmp / "run", launch(tmp / "log", *run_args(voc, tmp / "run", iters=6, batch=4))


def test_two_processes_train_what_one_trains(voc, two_processes, tmp_path):
    one = subprocess.run([sys.executable, "common/train.py", *run_args(voc, tmp_path / "one", iters=6, batch=4)],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two, logs = two_processes
    assert "4 images (2 per process x 2)" in logs
    assert "BatchNorm statistics of the global batch (AllReduceBatchNorm)" in logs
    loss1, w1 = checkpoint(tmp_path / "one")
    loss2, w2 = checkpoint(two)
    weight_diff = max(np.abs(w1[k] - w2[k]).max() for k in w1)
    print(f"one vs two processes, 6 steps: first loss {abs(loss1[0] - loss2[0]):.2e}, losses "
          f"{np.abs(loss1 - loss2).max():.2e} (relative {(np.abs(loss1 - loss2) / loss1).max():.2e}), "
          f"weights {weight_diff:.2e}")
    assert len(loss1) == len(loss2) == 6 and abs(loss1[0] - loss2[0]) < 1e-6
    assert np.abs(loss1 - loss2).max() < LOSS_TOL, (loss1, loss2)
    assert weight_diff < WEIGHT_TOL
    # rank 0 alone wrote: one checkpoint, one record per evaluation, no temporary files
    assert sorted(p.name for p in two.iterdir()) == ["best_model", "checkpoint.pdckpt", "config.yaml",
                                                     "curves.png", "final_model", "metrics.jsonl", "run.json"]
    assert [json.loads(line)["iter"] for line in (two / "metrics.jsonl").read_text().splitlines()] == [2, 4, 6]
    assert json.loads((two / "run.json").read_text())["world_size"] == 2


def test_two_process_run_resumes_exactly(voc, two_processes, tmp_path):
    launch(tmp_path / "log1", *run_args(voc, tmp_path / "run", iters=6, batch=4), "--stop-at", "3")
    assert not (tmp_path / "run" / "final_model").exists()
    logs = launch(tmp_path / "log2", "--out", tmp_path / "run", "--resume")
    assert "resumed at iteration 3 of 6" in logs
    loss_a, wa = checkpoint(two_processes[0])
    loss_b, wb = checkpoint(tmp_path / "run")
    assert loss_a.tolist() == loss_b.tolist()
    assert max(np.abs(wa[k] - wb[k]).max() for k in wa) == 0.0
