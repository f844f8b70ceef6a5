"""Run by tests/lib/test_engine.py under `paddle.distributed.launch` (and alone): train the
batch-norm-free tiny model (or, with argv[2] == "bn", a Conv-BN-ReLU model) for a few
steps and save rank 0's weights and running statistics to argv[1]."""
import sys

import common  # noqa: F401
import numpy as np
import paddle
import paddle.distributed as dist

from common.data import SyntheticScenes
from common.engine import Trainer
from common.models import build_model

if __name__ == "__main__":
    if dist.get_world_size() > 1:
        dist.init_parallel_env()
    paddle.seed(0)
    if sys.argv[2:] == ["bn"]:
        model = paddle.nn.Sequential(
            paddle.nn.Conv2D(3, 8, 3, padding=1), paddle.nn.BatchNorm2D(8), paddle.nn.ReLU(),
            paddle.nn.Conv2D(8, 8, 3, padding=2, dilation=2), paddle.nn.BatchNorm2D(8), paddle.nn.ReLU(),
            paddle.nn.Conv2D(8, 7, 1))
    else:
        model = build_model("tiny", 7, width=8, depth=2)
    trainer = Trainer(model, SyntheticScenes(8, 32, seed=0), iters=4, batch_size=4, lr=0.05,
                      progress=False)
    trainer.fit()
    if dist.get_rank() == 0:
        np.savez(sys.argv[1], world=dist.get_world_size(), sync=str(trainer.sync_batchnorm),
                 **{k: v.numpy() for k, v in model.state_dict().items()})
