"""Day 2's shipped FCN-8s weights: float16 round trip, error naming the command, and the
held-out per-class IoU recorded beside them is what the loaded weights score."""
import json

import numpy as np
import pytest

from common.weights import fcn as fw


def test_missing_weights_name_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"fcn8s\.pdparams.*python -m common\.weights\.fcn"):
        fw.load(tmp_path)


def test_float16_round_trip(tmp_path, monkeypatch):
    from common.models import build_model

    model = build_model("fcn8s", 7, **fw.RECIPE["model"])
    monkeypatch.setattr(fw, "per_class_iou", lambda m: ({"sky": 1.0}, 1.0))
    fw.save(model.state_dict(), 1.0, tmp_path)
    meta = json.loads((tmp_path / "fcn8s.json").read_text())
    assert meta["dtype"] == "float16" and meta["seed"] == 0 and "common.weights.fcn" in meta["command"]
    back = fw.load(tmp_path)
    for k, v in model.state_dict().items():
        np.testing.assert_allclose(back.state_dict()[k].numpy(), v.numpy().astype(np.float16), rtol=0, atol=0)


def test_shipped_weights_learn_every_class():
    """The committed weights reach the course target: IoU >= 0.5 per object, >= 0.8 per stuff class,
    and score what their JSON says."""
    model = fw.load()
    iou, miou = fw.per_class_iou(model)
    assert iou == model.config["val"]["iou"] and miou == model.config["val"]["miou"]
    assert min(iou[c] for c in ("disc", "square", "triangle")) >= 0.5, iou
    assert min(iou[c] for c in ("sky", "grass", "water", "road")) >= 0.8, iou
