"""python -m common.train / common.evaluate on a tiny VOC-layout folder: a run from the command
line stops, resumes, is scored and predicts; resuming is exact; every bad input is refused
before the first step, naming the option or file; a run folder is never silently replaced."""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest
import yaml

from common import evaluate as evaluate_cli
from common import runs as train_settings
from common import train as train_cli
from common.data import VOC_CLASSES, SyntheticScenes, read_image, read_label, to_tensor_arrays
from common.inference import predict
from common.models import load_pretrained
from common.options import OptionError
from voc_layout import run_args, write_pair, write_voc

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    return write_voc(tmp_path_factory.mktemp("voc") / "VOC2012")


def command(module, *args):
    r = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
    return r


def weights(folder):
    return {k: v.numpy() for k, v in paddle.load(str(Path(folder) / "model.pdparams")).items()}


# ------------------------------------------------------------------ the CI run
@pytest.mark.slow          # four commands, each starting Python and Paddle: ~20 s on 2 cores
def test_command_line_run_stops_resumes_evaluates_and_predicts(voc, tmp_path):
    out = tmp_path / "run"
    r = command("common.train", *run_args(voc, out, "--stop-at", "2"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "stopped at iteration 2 of 4" in r.stdout and "--resume" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["best_model", "checkpoint.pdckpt", "config.yaml",
                                                     "curves.png", "metrics.jsonl", "run.json"]
    r = command("common.train", "--out", out, "--resume")          # settings from the run folder
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed at iteration 2 of 4" in r.stdout and "final model" in r.stdout
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [rec["iter"] for rec in records] == [2, 4]
    assert list(records[0]["iou"]) == list(VOC_CLASSES)
    assert cv2.imread(str(out / "curves.png")).shape[2] == 3

    best = json.loads((out / "best_model" / "config.json").read_text())
    r = command("common.evaluate", "--model", out / "best_model", "--json", tmp_path / "scores.json")
    assert r.returncode == 0, r.stderr[-3000:]
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["split"] == "val" and scores["images"] == 3          # the run's validation data
    assert abs(scores["miou"] - best["miou"]) < 1e-6                  # the same metric as training
    assert "mIoU" in r.stdout and "aeroplane" in r.stdout

    photo = voc / "JPEGImages" / "val_001.jpg"
    r = command("common.predict", "--model", out / "final_model", "--out", tmp_path / "masks", photo)
    assert r.returncode == 0, r.stderr[-3000:]
    model = load_pretrained(out / "final_model")
    want = predict(model, to_tensor_arrays(read_image(photo))[None])[0]
    np.testing.assert_array_equal(read_label(tmp_path / "masks" / "val_001_label.png"), want)


def test_resumed_run_ends_as_one_never_stopped(voc, tmp_path):
    straight = train_cli.main(run_args(voc, tmp_path / "a", iters=6))
    stopped = train_cli.main(run_args(voc, tmp_path / "b", "--stop-at", "3", iters=6))
    assert stopped.it == 3 and not (tmp_path / "b" / "final_model").exists()
    # an evaluation logged after the checkpoint (a crash between the two) is redone, not kept twice
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write(json.dumps(dict(iter=4, miou=0.99)) + "\n")
    resumed = train_cli.main(["--out", str(tmp_path / "b"), "--resume", "--workers", "1"])
    assert resumed.history["loss"] == straight.history["loss"]
    a, b = weights(tmp_path / "a" / "final_model"), weights(tmp_path / "b" / "final_model")
    assert max(np.abs(a[k] - b[k]).max() for k in a) == 0.0
    ra, rb = ([{k: v for k, v in json.loads(line).items() if k != "time"}
               for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in "ab")
    assert ra == rb and [r["iter"] for r in ra] == [2, 4, 6]
    assert weights(tmp_path / "a" / "best_model").keys() == a.keys()


# ------------------------------------------------------------------ refused before training
def test_every_bad_input_is_refused_before_training(voc, tmp_path):
    def refused(args, match):
        out = tmp_path / "never"
        with pytest.raises((OptionError, FileNotFoundError), match=match):
            train_cli.main(args + ["--out", str(out)] if "--out" not in args else args)
        assert not out.exists()

    base = run_args(voc, tmp_path / "never")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(run_args(empty, tmp_path / "never"), r"voc dataset.*JPEGImages.*Expected: ROOT is VOCdevkit/VOC2012")
    refused(base + ["--num-classes", "20"], "num_classes=20, but voc has 21 classes")
    refused(base + ["--crop-size", "64"], r"--crop-size 64,64 is larger than every training image.*40x40")
    refused(base + ["--epochs", "2"], "--iters or --epochs, not both")
    refused(base + ["--model", "deeplab"], "--model 'deeplab' is not a model of the course")
    refused(base + ["--model-args", "depth=18", "colour=red"], "does not take these arguments.*colour")
    refused(base + ["--model", "mask_rcnn", "--model-args", "depth=18", "width=8"],
            "mask_rcnn is an instance or panoptic model")
    refused(base + ["--eval-window", "16", "--eval-stride", "24"], "--eval-stride 24,24 is larger than --eval-window")
    refused(base + ["--amp", "on"], "--amp on needs a GPU")
    refused(base + ["--stop-at", "4"], "--stop-at 4 is not before the end")
    refused(base + ["--eval-batch-size", "0"], r"--eval-batch-size: expected a whole number >= 1")
    refused(base + ["--scales", "2,1"], "--scales: expected MIN,MAX")
    refused(base + ["--pretrained-backbone", "nope.pdparams"], "neither 'imagenet' nor a file")
    refused(["--dataset", "folder", "--root", str(voc), "--out", str(tmp_path / "never")], "--num-classes is required")


def test_labels_are_checked_against_the_classes(tmp_path):
    """A folder of one's own: a label value beyond --num-classes stops the run naming the file;
    a class no pixel has is a warning."""
    data = SyntheticScenes(4, 40, seed=0)
    for split in ("train", "val"):
        for i, (image, label) in enumerate(zip(data.images, data.labels)):
            write_pair(tmp_path / "set" / split / "images" / f"{i}.jpg",
                       tmp_path / "set" / split / "labels" / f"{i}.png", image, label)
    top = max(int(label.max()) for label in data.labels)
    args = ["--dataset", "folder", "--root", str(tmp_path / "set"), "--model", "tiny", "--crop-size", "32",
            "--out", str(tmp_path / "run"), "--dry-run"]
    with pytest.raises(ValueError, match=rf"train/labels/\d\.png: label values \[{top}\] are outside \[0, {top}\)"):
        train_cli.main(args + ["--num-classes", str(top)])
    names = ",".join(f"c{k}" for k in range(top + 2))
    with pytest.raises(OptionError, match=f"{top + 1} class names for num_classes={top + 2}"):
        train_cli.main(args + ["--num-classes", str(top + 2), "--class-names", names[: names.rindex(",")]])
    assert train_cli.main(args + ["--num-classes", str(top + 2), "--class-names", names]) is None
    assert not (tmp_path / "run").exists()                            # a dry run writes nothing


def test_run_folder_is_never_silently_replaced(voc, tmp_path):
    out = tmp_path / "run"
    train_cli.main(run_args(voc, out, iters=2))
    first = (out / "metrics.jsonl").read_text()
    with pytest.raises(OptionError, match="holds another run.*--resume.*--overwrite"):
        train_cli.main(run_args(voc, out, iters=2))
    with pytest.raises(OptionError, match=r"--resume: --lr 0\.02 \(the run has 0\.01\)"):
        train_cli.main(run_args(voc, out, "--resume", "--lr", "0.02", iters=2))
    with pytest.raises(OptionError, match="one"):
        train_cli.main(run_args(voc, out, "--resume", "--overwrite", iters=2))
    train_cli.main(run_args(voc, out, "--overwrite", "--seed", "1", iters=2))
    assert (out / "metrics.jsonl").read_text() != first and len(first.splitlines()) == 1
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OptionError, match="notes.txt"):
        train_cli.main(run_args(voc, out, "--overwrite", iters=2))
    assert (out / "notes.txt").read_text() == "mine" and (out / "checkpoint.pdckpt").is_file()
    with pytest.raises(OptionError, match="no run to continue"):
        train_cli.main(run_args(voc, tmp_path / "new", "--resume"))


# ------------------------------------------------------------------ settings
def test_config_file_and_command_line(voc, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump(dict(dataset="voc", root=str(voc), crop_size=[24, 32], lr=0.05,
                                       model_args=dict(backbone="resnet", depth=18), amp="off")))
    s, given = train_settings.parse(["--config", str(cfg), "--lr", "0.1", "--out", "x"])
    assert s["crop_size"] == (24, 32) and s["lr"] == 0.1 and s["amp"] == "off"     # the command line wins
    assert s["model_args"] == {"backbone": "resnet", "depth": 18} and s["batch_size"] == 8   # default
    assert given == {"dataset", "root", "crop_size", "lr", "model_args", "amp", "out"}
    cfg.write_text("crop: 32\n")
    with pytest.raises(OptionError, match="unknown key 'crop'.*did you mean crop_size"):
        train_settings.parse(["--config", str(cfg)])
    cfg.write_text("crop-size: [0, 3]\n")
    with pytest.raises(OptionError, match="run.yaml: crop-size: expected a whole number >= 1"):
        train_settings.parse(["--config", str(cfg)])
    out = tmp_path / "run"
    train_cli.main(run_args(voc, out, iters=2))                      # its config.yaml is a --config
    again, _ = train_settings.parse(["--config", str(out / "config.yaml")])
    first, _ = train_settings.parse(run_args(voc, out, iters=2))
    assert {k: again[k] for k in first if k != "eval_stride"} == {k: first[k] for k in first if k != "eval_stride"}


def test_help_states_each_option_and_its_default(capsys):
    with pytest.raises(SystemExit) as exit_:
        train_settings.parse(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for o in train_settings.OPTIONS:
        assert o.flag_name in text
    for shown in ("(default: 0.01)", "(default: 512,512)", "(default: deeplabv3plus)", "(default: 8)",
                  "global batch", "paddle.distributed.launch --gpus 0,1,2,3 common/train.py"):
        assert shown in text, shown


def test_every_option_passes_through_paddles_launcher(monkeypatch):
    """paddle.distributed.launch parses the words after the script too (argparse prefix
    matching): none of ours may be mistaken for one of its options."""
    from paddle.distributed.launch.context.args_envs import parse_args

    ours = []
    for o in train_settings.OPTIONS:
        ours += [o.flag_name] if o.flag else [o.flag_name, "1"]
    monkeypatch.setattr(sys, "argv", ["launch", "--nproc_per_node", "2", "common/train.py", *ours])
    args, unknown = parse_args()
    assert unknown == [] and args.training_script == "common/train.py"
    assert args.training_script_args == ours and args.nproc_per_node == 2


def test_evaluate_by_sliding_windows_and_scales(voc, tmp_path):
    out = tmp_path / "run"
    train_cli.main(run_args(voc, out, iters=2))
    whole = evaluate_cli.main(["--model", str(out / "final_model")])
    tiled = evaluate_cli.main(["--model", str(out / "final_model"), "--window", "40"])   # one window
    assert tiled["miou"] == whole["miou"] or np.isnan(whole["miou"])
    windows = evaluate_cli.main(["--model", str(out / "final_model"), "--window", "24", "--stride", "16",
                                 "--scales", "0.75,1", "--flip", "--split", "train"])
    assert 0 <= windows["pixel_acc"] <= 1
    with pytest.raises(OptionError, match="--dataset cityscapes --root .*leftImg8bit/val"):
        evaluate_cli.main(["--model", str(out / "final_model"), "--dataset", "cityscapes"])
    with pytest.raises(OptionError, match="--stride needs --window"):
        evaluate_cli.main(["--model", str(out / "final_model"), "--stride", "8"])
