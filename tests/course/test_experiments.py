"""The experiments runner (common.course.experiments): results schema, round trip, table, CLI, and every
discovered experiment runs in FAST mode into a temporary directory (so none can rot)."""
import json
import math

import pytest

from common.course import experiments


def _fake_variants(calls):
    def make(offset):
        def fn(seed):
            calls.append((offset, seed))
            return {"miou": 0.5 + offset + 0.01 * seed, "bf": 0.25 * seed}
        return fn
    return {"a": make(0.0), "b": make(0.2)}


def test_run_writes_schema_and_round_trips(tmp_path):
    calls = []
    res = experiments.run("toy", _fake_variants(calls), seeds=(0, 1, 2), fast=True, out_dir=tmp_path,
                          meta={"what": "toy"})
    assert calls == [(0.0, 0), (0.0, 1), (0.0, 2), (0.2, 0), (0.2, 1), (0.2, 2)]
    on_disk = json.loads((tmp_path / "toy.json").read_text())
    assert on_disk == res == experiments.load("toy", tmp_path)
    assert set(res) >= {"name", "command", "code_version", "seeds", "fast", "seconds", "variants", "meta"}
    assert res["command"].startswith("make experiments EXPERIMENTS=toy")
    assert res["seeds"] == [0, 1, 2] and res["fast"] is True and res["meta"] == {"what": "toy"}
    assert set(res["seconds"]["per_variant"]) == {"a", "b"} and res["seconds"]["total"] >= 0
    assert res["code_version"] == "unknown" or len(res["code_version"].split("+")[0]) == 40
    b = res["variants"]["b"]
    assert b["per_seed"]["1"] == {"miou": pytest.approx(0.71), "bf": 0.25}
    assert b["mean"]["miou"] == pytest.approx(0.71)
    # sample standard deviation over the three seeds (ddof=1): values 0, 0.25, 0.5 -> 0.25
    assert b["std"]["bf"] == pytest.approx(0.25)
    assert not list(tmp_path.glob("*.tmp"))     # the atomic write left no temporary file


def test_nan_metrics_are_standard_json_and_load_back_as_nan(tmp_path):
    """A class absent from the data has NaN IoU; the file holds null (strict JSON), load gives NaN."""
    experiments.run("absent", {"v": lambda seed: {"iou_grass": float("nan"), "miou": 0.5}},
                    seeds=(0, 1), fast=True, out_dir=tmp_path)
    text = (tmp_path / "absent.json").read_text()
    assert "NaN" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    res = experiments.load("absent", tmp_path)
    assert math.isnan(res["variants"]["v"]["per_seed"]["0"]["iou_grass"])
    assert math.isnan(res["variants"]["v"]["mean"]["iou_grass"]) and res["variants"]["v"]["mean"]["miou"] == 0.5


def test_table_lists_mean_std_and_every_seed(tmp_path):
    res = experiments.run("toy", _fake_variants([]), seeds=(0, 1, 2), fast=True, out_dir=tmp_path)
    text = experiments.table(res, metrics=["bf"])
    lines = text.splitlines()
    assert "mean ± std" in lines[0]
    row_a = next(l for l in lines if l.startswith("a "))
    assert "0.250 ± 0.250 (0.000, 0.250, 0.500)" in row_a
    assert "miou" not in text.split("\n", 1)[1]
    with pytest.raises(KeyError, match="nope"):
        experiments.table(res, metrics=["nope"])


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A stand-in course checkout (``SEGCOURSE_ROOT``) with an empty ``results/``."""
    (tmp_path / "common").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setenv("SEGCOURSE_ROOT", str(tmp_path))
    return tmp_path


def test_fast_mode_never_writes_the_committed_results(checkout):
    fast_dir = checkout / "build" / "experiments-fast"
    assert experiments.default_out_dir(True) == fast_dir
    assert experiments.default_out_dir(False) == checkout / "results"
    experiments.run("toy", {"a": lambda s: {"m": 1.0}}, seeds=(0,), fast=True)
    assert (fast_dir / "toy.json").is_file()
    assert not (checkout / "results" / "toy.json").exists()


def test_load_missing_names_file_and_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothere\.json.*make experiments EXPERIMENTS=nothere"):
        experiments.load("nothere", tmp_path)


def test_run_rejects_bad_variants(tmp_path):
    with pytest.raises(ValueError, match="no variants"):
        experiments.run("toy", {}, out_dir=tmp_path)
    with pytest.raises(TypeError, match="variant 'a', seed 0"):
        experiments.run("toy", {"a": lambda s: None}, seeds=(0,), out_dir=tmp_path)
    with pytest.raises(ValueError, match="different metrics"):
        experiments.run("toy", {"a": lambda s: {"m": 1.0} if s == 0 else {"n": 1.0}}, seeds=(0, 1),
                        out_dir=tmp_path)


def test_plot_draws_a_bar_per_variant_and_a_dot_per_seed(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = experiments.run("toy", _fake_variants([]), seeds=(0, 1, 2), fast=True, out_dir=tmp_path)
    ax = experiments.plot(res, "miou")
    assert len(ax.patches) == 2
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert [len(d.get_ydata()) for d in dots] == [3, 3]
    assert math.isclose(ax.patches[1].get_height(), 0.71)
    plt.close(ax.figure)


def test_cli_lists_and_rejects_unknown(capsys):
    from common.course.experiments.__main__ import main

    assert main(["--list"]) == 0
    assert capsys.readouterr().out.split() == experiments.available()
    assert main(["--fast", "no_such_experiment"]) == 2
    assert "no_such_experiment" in capsys.readouterr().err


@pytest.mark.parametrize("name", experiments.available())
def test_every_experiment_runs_fast(name, checkout):
    """Each experiment module runs its FAST sizes into a temporary checkout and writes a valid file."""
    mod = experiments.get(name)
    res = mod.main(fast=True)
    assert res["name"] == name and res["fast"] is True
    # compared as JSON text: NaN (a class absent from FAST's few scenes) is never == NaN
    loaded = experiments.load(name, checkout / "build" / "experiments-fast")
    assert json.dumps(loaded, sort_keys=True) == json.dumps(res, sort_keys=True)
    assert len(res["variants"]) >= 2 and len(res["seeds"]) >= 1
    for v in res["variants"].values():
        # per-class scores may be NaN on FAST's few scenes (a class absent from them), not all
        assert any(math.isfinite(x) for x in v["mean"].values())
    experiments.table(res)


def test_context_class_iou_and_target():
    """Absent classes (NaN) are dropped; hulls need 0.5 IoU and surfaces 0.8, each exactly."""
    from common.course.experiments.context_units import class_iou, misses_target

    classes = ("sky", "grass", "water", "road", "boat", "car")
    iou, line = class_iou({"iou": [0.9, float("nan"), 0.79, 0.8, 0.49, 0.5]}, classes)
    assert list(iou) == ["sky", "water", "road", "boat", "car"] and "grass" not in line
    assert misses_target(iou) == {"water": 0.79, "boat": 0.49}
    assert misses_target({"sky": 0.8, "car": 0.5}) == {}
