"""Score a trained model on a dataset with the course's metrics.

    python -m common.evaluate --model runs/mine/best_model

scores a folder written by ``python -m common.train`` (``best_model/``, ``final_model/``)
on the validation split of the dataset it was trained on (recorded in its
``config.json``), or on the one ``--dataset`` / ``--root`` / ``--split`` name. It prints
the IoU and accuracy of each class, mIoU, mAcc and pixel accuracy: the scores of
``common.metrics.segmentation_scores`` on the confusion matrix summed over the whole
split, as the training's evaluations. Whole images by default; ``--window`` scores by
sliding windows (images larger than the training crops), ``--scales`` and ``--flip``
average over rescaled and mirrored copies (test-time augmentation).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from .layouts import FIXED_CLASSES
from .options import (DATA_OPTIONS, DEVICE_OPTION, Option, OptionError, build_parser, open_split,
                      positive_int, resolve, run_cli, scale_list, select_device, size_hw, sliding_window)

PROG = "python -m common.evaluate"
DATA = {o.name: o for o in DATA_OPTIONS}

OPTIONS = [
    Option("model", None, "the model folder: best_model/ or final_model/ of a run, or any "
           "save_pretrained folder (required)", str, group="model", metavar="DIR"),
    Option("weights", None, "a checkpoint (a run's checkpoint.pdckpt) or state dict whose "
           "weights replace the folder's", str, group="model", metavar="FILE"),
] + [dataclasses.replace(DATA[name], default=None, help=text) for name, text in (
    ("dataset", "the kind of dataset under --root: folder, filelist, voc, cityscapes or coco-panoptic "
                "(their layouts: python -m common.train --help); default: the model's training data"),
    ("root", "the dataset folder; default: the model's training data"),
    ("class_names", "names of the classes, comma-separated (folder and filelist); default: the "
                    "model's"),
    ("ignore_index", "label value of unlabelled pixels, not scored (folder and filelist); default: "
                     "the model's training data's, else 255"))] + [
    Option("split", None, "the split to score (default: the run's validation split, else val)",
           str, group="data", metavar="NAME"),
    Option("window", None, "score by sliding windows of this size (N or HEIGHT,WIDTH); "
           "default: whole images", size_hw, group="evaluation", metavar="N"),
    Option("stride", None, "step between the windows (default: 2/3 of --window)", size_hw,
           group="evaluation", metavar="N"),
    Option("scales", (1.0,), "average over the image rescaled by these factors, e.g. "
           "0.75,1,1.25", scale_list, group="evaluation", metavar="S,S,..."),
    Option("flip", False, "also average over the left-right mirrored image", flag=True,
           group="evaluation"),
    Option("batch_size", 1, "images per forward pass (more than 1 only when the images share "
           "one size)", positive_int, group="evaluation", metavar="B"),
    dataclasses.replace(DEVICE_OPTION, group="evaluation"),
    Option("json", None, "also write the scores to this JSON file", str, group="evaluation",
           metavar="FILE"),
]


def json_float(x):
    """A score for JSON: NaN (a class absent from label and prediction) becomes null."""
    x = float(x)
    return None if math.isnan(x) else round(x, 6)


def format_scores(scores, classes, title=""):
    """A table of per-class IoU and accuracy, then mIoU, mAcc and pixel accuracy.

    Args:
        scores: ``segmentation_scores`` output (``iou``, ``miou``, ``macc``, ``pixel_acc``;
            ``acc`` optional); NaN (a class absent from label and prediction) shows as ``-``.
        classes: the class names.
        title: a first line.

    Returns:
        str.
    """
    def num(v):
        return f"{'-':>6}" if v is None or math.isnan(v) else f"{v:.4f}"

    width = max([5] + [len(str(c)) for c in classes])
    acc = scores.get("acc")
    lines = [title] if title else []
    lines.append(f"{'class':<{width}}  {'IoU':>6}" + (f"  {'Acc':>6}" if acc is not None else ""))
    for k, c in enumerate(classes):
        lines.append(f"{str(c):<{width}}  {num(scores['iou'][k])}" + (f"  {num(acc[k])}" if acc is not None else ""))
    lines.append(f"mIoU {num(scores['miou'])} | mAcc {num(scores['macc'])} | "
                 f"pixel accuracy {num(scores['pixel_acc'])}")
    return "\n".join(lines)


def parse(argv=None):
    """``(settings, given)`` from the command line and ``--config``."""
    return resolve(build_parser(PROG, __doc__.split("\n\n")[0], OPTIONS), OPTIONS, argv)


def main(argv=None):
    """Run the command.

    Args:
        argv: the arguments without the program name; None reads ``sys.argv``.

    Returns:
        the ``segmentation_scores`` dict.
    """
    s, _ = parse(argv)
    from . import inference, models  # Paddle (seconds to import): parse and --help first

    if not s["model"]:
        raise OptionError("--model is required: a folder written by common.train or save_pretrained")
    window = sliding_window(s["window"], s["stride"])
    device = select_device(s["device"])
    model = models.load_pretrained(s["model"])
    if s["weights"]:
        models.load_weights(model, s["weights"])
    config = model.config
    # the data the model was trained on, unless told otherwise
    for key, fallback in (("dataset", "folder"), ("root", None), ("ignore_index", 255)):
        if s[key] is None:
            s[key] = config.get(key, fallback)
    split = s["split"] or (config.get("val_split") if config.get("val_split", "none") != "none" else "val")
    s["num_classes"] = config["num_classes"]
    if s["dataset"] not in FIXED_CLASSES and s["class_names"] is None and config.get("classes"):
        s["class_names"] = tuple(config["classes"])
    data = open_split(s, split)
    how = (f"windows {window[0][0]}x{window[0][1]} every {window[1][0]}x{window[1][1]}" if window
           else "whole images") + (f", scales {','.join(map(str, s['scales']))}" if s["scales"] != (1.0,) else "") \
        + (", flip" if s["flip"] else "")
    scores = inference.evaluate(model, data, data.num_classes, data.ignore_index, s["batch_size"], progress=True,
                      scales=s["scales"], flip=s["flip"], window=window)
    print(format_scores(scores, data.classes, f"{s['model']} on {s['dataset']} {s['root']} {split}: "
                                              f"{len(data)} images, {how}, {device}"))
    if s["json"]:
        record = dict(model=str(s["model"]), weights=s["weights"], dataset=s["dataset"], root=str(s["root"]),
                      split=split, images=len(data), evaluation=how,
                      **{k: json_float(scores[k]) for k in ("miou", "macc", "pixel_acc", "kappa")},
                      iou={str(c): json_float(v) for c, v in zip(data.classes, scores["iou"])},
                      acc={str(c): json_float(v) for c, v in zip(data.classes, scores["acc"])})
        Path(s["json"]).parent.mkdir(parents=True, exist_ok=True)
        Path(s["json"]).write_text(json.dumps(record, indent=1) + "\n")
    return scores


if __name__ == "__main__":
    run_cli(main, PROG)
