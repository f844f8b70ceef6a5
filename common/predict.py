"""Segment your own photos with a saved model.

    python -m common.predict --model runs/deeplab --out masks/ photo.jpg [more.jpg ...]

``--model`` is a folder written by ``common.models.save_pretrained`` (weights + config);
``--weights`` optionally replaces its weights with another state dict or a ``Trainer``
checkpoint. For each image ``<stem>_label.png`` (palette PNG: pixel value = class index,
readable by ``common.data.read_label``) and ``<stem>_overlay.png`` (colours over the photo)
are written to ``--out``. Any image size: an image larger than ``--window`` is predicted
by overlapping windows (``common.inference.sliding_window``). ``--device`` picks CPU or GPU
(default: GPU when Paddle has CUDA). ``--engine`` runs the model as it is (``dynamic``), with
batch norm folded into the convolutions (``folded``), as an exported static graph
(``static``) or through Paddle Inference with oneDNN / TensorRT (``inference``); see
``common.deploy``. The exported engines build a program once per model (once per input
shape for U-Net and FCN; a few seconds each), check it equal to the dynamic model on the
first input of each shape, and keep it in ``common.deploy.export_cache()`` for later runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# common.deploy's engine names (repeated here so that --help imports no Paddle; a test compares them)
ENGINES = ("dynamic", "folded", "static", "inference")
DEFAULT_ENGINE = "dynamic"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m common.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("images", nargs="+", help="image files (png, jpg, ...)")
    p.add_argument("--model", required=True, help="folder written by save_pretrained")
    p.add_argument("--weights", help="state dict or Trainer checkpoint replacing the saved weights")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--window", type=int, default=512,
                   help="sliding-window size for images larger than this (default 512; 0 = never)")
    p.add_argument("--stride", type=int, help="window step (default 2/3 of the window)")
    p.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the colours")
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    p.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                   help=f"how to run the model (default {DEFAULT_ENGINE}; see common.deploy)")
    p.add_argument("--quiet", action="store_true", help="do not print a line per image")
    return p.parse_args(argv)


def main(argv=None):
    """Run the CLI.

    Args:
        argv: command-line arguments without the program name; None reads ``sys.argv``.

    Returns:
        list of the written files.
    """
    args = parse_args(argv)
    import numpy as np
    from PIL import Image

    from . import data, deploy, inference, models, options, viz  # Paddle (seconds to import): parse and --help first

    device = options.select_device(args.device)
    model = models.load_pretrained(args.model)
    if args.weights:
        models.load_weights(model, args.weights)
    model.eval()
    config = model.config
    if config["num_classes"] > 256:
        raise ValueError("more than 256 classes do not fit an 8-bit label PNG")
    model = deploy.fast_model(model, args.engine, device=device)
    pal = np.asarray(config.get("palette") or viz.palette(256), np.uint8).reshape(-1, 3)
    if len(pal) < 256:
        pal = np.concatenate([pal, viz.palette(256)[len(pal):]])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in map(Path, args.images):
        image = data.read_image(path)
        label = inference.segment_image(model, image, args.window, args.stride).astype(np.uint8)
        lab_png = Image.fromarray(label, mode="P")
        lab_png.putpalette(pal.ravel().tolist())
        lab_path, ov_path = out / f"{path.stem}_label.png", out / f"{path.stem}_overlay.png"
        lab_png.save(lab_path)
        overlay = (image * (1 - args.alpha) + pal[label] * args.alpha).round().astype(np.uint8)
        Image.fromarray(overlay).save(ov_path)
        written += [lab_path, ov_path]
        if not args.quiet:
            print(f"{path} ({image.shape[1]}x{image.shape[0]}) -> {lab_path}, {ov_path}")
    return written


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as err:
        sys.exit(f"error: {err}")
