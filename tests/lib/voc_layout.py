"""Tiny datasets in the VOC layout for the tests of common.train (imported by test_train_cli.py
and test_train_distributed.py, as dp_worker.py is by test_engine.py)."""
import cv2
import numpy as np
from PIL import Image

from common.data import SyntheticScenes, voc_palette


def write_pair(image_path, label_path, image, label):
    """An RGB JPEG/PNG image and its palette-PNG label (the VOC format)."""
    image_path.parent.mkdir(parents=True, exist_ok=True)
    label_path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(image_path), image[..., ::-1])
    png = Image.fromarray(label.astype(np.uint8), mode="P")
    png.putpalette(voc_palette(256).ravel().tolist())
    png.save(label_path)


def write_voc(root, n_train=6, n_val=3, size=40):
    """The VOC layout (as Day 4 04 writes it) from the synthetic scenes: 7 of VOC's 21 classes."""
    for split, data in (("train", SyntheticScenes(n_train, size, seed=0)),
                        ("val", SyntheticScenes(n_val, size, seed=10_000))):
        ids = [f"{split}_{i:03d}" for i in range(len(data))]
        for name, image, label in zip(ids, data.images, data.labels):
            write_pair(root / "JPEGImages" / f"{name}.jpg", root / "SegmentationClass" / f"{name}.png", image, label)
        (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


def run_args(root, out, *extra, iters=4, batch=2):
    """Arguments of common.train: DeepLab V3+ (ResNet-18, width 8: 0.2 M parameters, with
    BatchNorm) on 32-px crops of ``root`` (a VOC layout), ``iters`` steps of ``batch`` images."""
    return ["--dataset", "voc", "--root", str(root), "--model", "deeplabv3plus", "--model-args",
            "backbone=resnet", "depth=18", "width=8", "--crop-size", "32", "--scales", "0.75,1.25",
            "--batch-size", str(batch), "--iters", str(iters), "--eval-every", "2", "--workers", "0",
            "--out", str(out), *extra]
