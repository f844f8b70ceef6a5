"""``common.course.paths``: the course checkout's folders, found from the package or from
SEGCOURSE_ROOT, and a clear error naming what is missing when ``common`` runs without a checkout
(installed from a wheel)."""
from pathlib import Path

import pytest

from common.course import experiments, paths, weights

ROOT = Path(__file__).resolve().parents[2]


def test_the_checkout_is_the_folder_holding_common():
    assert paths.checkout() == ROOT
    assert paths.checkout_folder("results") == ROOT / "results"
    assert paths.checkout_folder("weights/day2") == ROOT / "weights" / "day2"


def test_without_a_checkout_the_tools_say_which_folder_they_miss(tmp_path, monkeypatch):
    site = tmp_path / "site-packages"
    (site / "common").mkdir(parents=True)
    monkeypatch.setattr(paths, "_PACKAGE", site / "common")          # as installed from a wheel
    with pytest.raises(FileNotFoundError, match="installed outside a checkout.*SEGCOURSE_ROOT"):
        experiments.load("crf")
    monkeypatch.setenv("SEGCOURSE_ROOT", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere is not a checkout .*SEGCOURSE_ROOT="):
        weights.load("unet")
    (tmp_path / "nowhere" / "common").mkdir(parents=True)
    (tmp_path / "nowhere" / "pyproject.toml").write_text("")
    with pytest.raises(FileNotFoundError, match="no folder weights/ in the course checkout"):
        weights.load("unet")
    with pytest.raises(FileNotFoundError, match="no folder results/"):
        experiments.load("crf")
    assert experiments.code_version() == "unknown"                    # not a git repository
