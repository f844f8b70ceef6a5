import os

os.environ.setdefault("SEGCOURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import common  # noqa: E402,F401  (loads Paddle quietly with the thread setting)
import numpy as np  # noqa: E402
import paddle  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    np.random.seed(0)
    paddle.seed(0)
    paddle.set_device("cpu")
    yield
