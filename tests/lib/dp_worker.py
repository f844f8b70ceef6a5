"""Run by tests/lib/test_engine.py under `paddle.distributed.launch` (and alone): train the
batch-norm-free tiny model and a Conv-BN-ReLU model for a few steps each, and save rank 0's
weights and running statistics (and, under "start:", the weights before the first step) to
argv[1]/plain.npz and argv[1]/bn.npz. Both models in one run:
each Paddle process (and the launcher) costs seconds to start."""
import sys
from pathlib import Path

import common  # noqa: F401
import numpy as np
import paddle
import paddle.distributed as dist

from common.data import SyntheticScenes
from common.engine import Trainer
from common.models import build_model


def models():
    """{name: a fresh model}, built after paddle.seed(0) each."""
    yield "plain", lambda: build_model("tiny", 7, width=8, depth=2)
    yield "bn", lambda: paddle.nn.Sequential(
        paddle.nn.Conv2D(3, 8, 3, padding=1), paddle.nn.BatchNorm2D(8), paddle.nn.ReLU(),
        paddle.nn.Conv2D(8, 8, 3, padding=2, dilation=2), paddle.nn.BatchNorm2D(8), paddle.nn.ReLU(),
        paddle.nn.Conv2D(8, 7, 1))


if __name__ == "__main__":
    if dist.get_world_size() > 1:
        dist.init_parallel_env()
    out = Path(sys.argv[1])
    for name, build in models():
        paddle.seed(0)
        model = build()
        start = {"start:" + k: v.numpy().copy() for k, v in model.state_dict().items()}
        trainer = Trainer(model, SyntheticScenes(8, 32, seed=0), iters=4, batch_size=4, lr=0.05,
                          progress=False)
        trainer.fit()
        if dist.get_rank() == 0:
            np.savez(out / f"{name}.npz", world=dist.get_world_size(), sync=str(trainer.sync_batchnorm),
                     **start, **{k: v.numpy() for k, v in model.state_dict().items()})
