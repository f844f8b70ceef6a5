import json
import os

os.environ.setdefault("SEGCOURSE_FAST", "1")

import common  # noqa: E402,F401  (loads Paddle quietly with the thread setting)
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import paddle  # noqa: E402
import pytest  # noqa: E402

from common.course.timing import cell_times  # noqa: E402

# No figure windows in the tests. Not through MPLBACKEND: `make test` runs the notebooks in this
# same session, and their kernels inherit the environment (ipykernel draws inline only without it).
matplotlib.use("Agg")


def pytest_collection_modifyitems(items):
    """Longest work first, so that the workers of one session finish together.

    ``make test`` runs the unit tests and the notebooks in one xdist session in which each test
    module and each notebook stays on one worker (``--dist loadfile --no-loadscope-reorder``) and
    is handed out in this order: the test modules first, then the notebooks by the cell time
    their committed outputs record (``make notebooks``), longest first. The small notebooks come
    last and fill in while the other worker finishes its last long one.
    """
    recorded = {}

    def cost(item):
        path = item.path
        if path.suffix != ".ipynb":
            return 0.0
        if path not in recorded:
            times = cell_times(json.loads(path.read_text(encoding="utf-8")))
            recorded[path] = sum(t or 0.0 for t in times)
        return recorded[path]

    items.sort(key=lambda item: (item.path.suffix == ".ipynb", -cost(item)))   # stable: cells keep their order


@pytest.fixture(autouse=True)
def _seeded(tmp_path, monkeypatch):
    np.random.seed(0)
    paddle.seed(0)
    paddle.set_device("cpu")
    # each test its own cache of exported programs: none is reused or remembered across tests
    monkeypatch.setenv("SEGCOURSE_EXPORT_CACHE", str(tmp_path / "export_cache"))
    yield


def _fit_tiny(model, loss_of, steps, lr):
    """``steps`` Adam updates of ``model`` on one fixed batch: the "learns a tiny set" loop.

    Args:
        model: the paddle.nn.Layer to train (put in training mode).
        loss_of: ``loss_of(model)`` -> a scalar loss tensor, or a dict of named loss tensors
            whose sum is minimised.
        steps: number of updates.
        lr: Adam's learning rate.

    Returns:
        np.ndarray of the loss before each update: (steps,), or (steps, parts) for a dict
        (its terms in the dict's order).
    """
    model.train()
    opt = paddle.optimizer.Adam(lr, parameters=model.parameters())
    hist = []
    for _ in range(steps):
        out = loss_of(model)
        loss = sum(out.values()) if isinstance(out, dict) else out
        loss.backward()
        opt.step()
        opt.clear_grad()
        hist.append([float(v) for v in out.values()] if isinstance(out, dict) else float(loss))
    return np.array(hist)


@pytest.fixture
def fit_tiny():
    """The shared "learns a tiny set" training loop (see ``_fit_tiny``)."""
    return _fit_tiny
