"""python -m common.predict on a tiny saved model and generated images of odd sizes."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from common.data import read_image, read_label, to_tensor_arrays
from common.inference import predict, sliding_window
from common.models import build_model, save_pretrained
from common.predict import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def saved(tmp_path):
    paddle.seed(0)
    model = build_model("tiny", 3, width=8, depth=3)
    model.eval()
    save_pretrained(model, tmp_path / "model")
    rng = np.random.default_rng(0)
    images = []
    for name, (h, w) in (("a.png", (37, 53)), ("b.jpg", (70, 41))):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(tmp_path / name), img[..., ::-1])
        images.append(tmp_path / name)
    return model, images, tmp_path


def test_predict_cli_writes_label_and_overlay(saved):
    model, images, tmp = saved
    files = main(["--model", str(tmp / "model"), "--out", str(tmp / "masks"), "--window", "0",
                  "--device", "cpu"] + [str(p) for p in images])
    assert len(files) == 4
    for p in images:
        image = read_image(p)
        label = read_label(tmp / "masks" / f"{p.stem}_label.png")          # palette PNG
        want = predict(model, to_tensor_arrays(image)[None])[0]
        np.testing.assert_array_equal(label, want)
        overlay = read_image(tmp / "masks" / f"{p.stem}_overlay.png")
        assert overlay.shape == image.shape and not np.array_equal(overlay, image)


def test_predict_cli_sliding_window_for_large_images(saved):
    model, images, tmp = saved
    main(["--model", str(tmp / "model"), "--out", str(tmp / "m"), "--window", "24",
          "--stride", "16", str(images[1])])
    x = to_tensor_arrays(read_image(images[1]))[None]
    want = sliding_window(model, x, 24, 16).argmax(1).numpy()[0]
    np.testing.assert_array_equal(read_label(tmp / "m" / "b_label.png"), want)


def test_predict_cli_weights_override_and_errors(saved):
    model, images, tmp = saved
    other = build_model("tiny", 3, width=8, depth=3)
    paddle.save({"model": other.state_dict(), "step": 3}, str(tmp / "ckpt.pdparams"))   # Trainer-style
    main(["--model", str(tmp / "model"), "--weights", str(tmp / "ckpt.pdparams"), "--out",
          str(tmp / "o"), str(images[0])])
    other.eval()
    want = predict(other, to_tensor_arrays(read_image(images[0]))[None])[0]
    np.testing.assert_array_equal(read_label(tmp / "o" / "a_label.png"), want)
    with pytest.raises(ValueError, match="missing.png"):
        main(["--model", str(tmp / "model"), "--out", str(tmp / "o"), str(tmp / "missing.png")])
    with pytest.raises(FileNotFoundError, match="config.json"):
        main(["--model", str(tmp), "--out", str(tmp / "o"), str(images[0])])


@pytest.mark.slow          # Python and Paddle started twice
def test_python_dash_m_entry_point(saved):
    _, images, tmp = saved
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "common.predict", "--model", str(tmp / "model"),
                        "--out", str(tmp / "cli"), str(images[0])], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp / "cli" / "a_label.png").is_file() and (tmp / "cli" / "a_overlay.png").is_file()
    r = subprocess.run([sys.executable, "-m", "common.predict", "--model", str(tmp / "model"),
                        "--out", str(tmp / "cli"), str(tmp / "nope.jpg")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "nope.jpg" in r.stderr


def test_predict_cli_quiet(saved, capsys):
    _, images, tmp = saved
    main(["--model", str(tmp / "model"), "--out", str(tmp / "q"), str(images[0])])
    assert "a_label.png" in capsys.readouterr().out
    main(["--model", str(tmp / "model"), "--out", str(tmp / "q"), "--quiet", str(images[0])])
    assert capsys.readouterr().out == ""


def test_engines_of_the_cli_match_common_deploy():
    from common import deploy, predict as cli

    assert cli.ENGINES == deploy.ENGINES and cli.DEFAULT_ENGINE in deploy.ENGINES


@pytest.mark.parametrize("engine", ["folded", "static", "inference"])
def test_predict_cli_engines_label_like_the_dynamic_model(tmp_path, engine, monkeypatch):
    """A model with batch norm (running statistics away from the identity), odd image size,
    whole image and sliding windows: each engine labels like the dynamic model."""
    from common import deploy

    made = []
    real = deploy.fast_model
    monkeypatch.setattr(deploy, "fast_model", lambda m, e, **kw: made.append(e) or real(m, e, **kw))
    paddle.seed(5)
    model = build_model("pspnet", 4, depth=18, width=8)
    rng = np.random.default_rng(5)
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            c = layer._mean.shape[0]
            layer._mean.set_value(rng.normal(0, 0.5, c).astype(np.float32))
            layer._variance.set_value(rng.uniform(0.3, 3.0, c).astype(np.float32))
    model.eval()
    save_pretrained(model, tmp_path / "model")
    img = rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "c.png"), img[..., ::-1])
    x = to_tensor_arrays(read_image(tmp_path / "c.png"))[None]
    for window, want in ((0, predict(model, x)[0]), (32, sliding_window(model, x, 32, 21).argmax(1).numpy()[0])):
        out = tmp_path / f"o{window}"
        main(["--model", str(tmp_path / "model"), "--out", str(out), "--window", str(window),
              "--engine", engine, "--quiet", str(tmp_path / "c.png")])
        got = read_label(out / "c_label.png")
        assert (got == want).mean() > 0.999, (engine, window)    # argmax ties may flip
    assert made == [engine, engine]
