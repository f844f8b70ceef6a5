"""Callbacks of the notebooks' ipywidgets demos, as plain functions that tests call directly.

A notebook wires a callback to sliders with ``ipywidgets.interact``; everything the demo
computes lives here, so it is tested without a browser. Each day adds its own section.
"""
from __future__ import annotations

import numpy as np

# ----------------------------------------------------------------------------- Day 1


def morph_mask(mask, steps):
    """Grow (``steps`` > 0, dilation 膨胀) or shrink (``steps`` < 0, erosion 腐蚀) a boolean
    mask by ``|steps|`` pixels with a 3x3 square, as a predicted mask that is too fat or thin."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask, bool)
    steps = int(steps)
    if steps == 0:
        return mask.copy()
    op = ndi.binary_dilation if steps > 0 else ndi.binary_erosion
    # border_value=0: erosion eats the mask from the image edge too, as a real prediction would.
    return op(mask, structure=np.ones((3, 3), bool), iterations=abs(steps), border_value=0)


def erode_dilate_scores(label_mask, pred_mask, steps):
    """Scores of ``pred_mask`` grown/shrunk by ``steps`` against ``label_mask`` (two classes:
    0 background, 1 object). Returns dict(mask, iou_object, miou, pixel_acc)."""
    from .metrics import confusion_matrix, segmentation_scores

    label_mask, pred_mask = np.asarray(label_mask, bool), np.asarray(pred_mask, bool)
    if label_mask.shape != pred_mask.shape:
        raise ValueError(f"label_mask shape {label_mask.shape} differs from pred_mask shape "
                         f"{pred_mask.shape}")
    mask = morph_mask(pred_mask, steps)
    scores = segmentation_scores(confusion_matrix(mask, label_mask, 2))
    return dict(mask=mask, iou_object=float(scores["iou"][1]), miou=scores["miou"],
                pixel_acc=scores["pixel_acc"])


def erode_dilate_demo(label_mask, pred_mask, steps=0, image=None, show=True):
    """Widget callback: draw the grown/shrunk prediction over the label and print IoU of the
    object, mIoU and pixel accuracy. Returns the scores of ``erode_dilate_scores``."""
    s = erode_dilate_scores(label_mask, pred_mask, steps)
    if show:
        import matplotlib.pyplot as plt

        label_mask = np.asarray(label_mask, bool)
        # Green: right object pixels (TP), red: false positives, blue: missed (FN).
        shown = np.zeros(label_mask.shape + (3,), np.uint8) if image is None else \
            (np.asarray(image, np.float32) * 0.4).astype(np.uint8)
        shown[s["mask"] & label_mask] = (40, 200, 60)
        shown[s["mask"] & ~label_mask] = (230, 50, 50)
        shown[~s["mask"] & label_mask] = (50, 90, 230)
        fig, ax = plt.subplots(figsize=(3, 3), dpi=80)
        ax.imshow(shown, interpolation="nearest")
        ax.set_title(f"steps {steps:+d}: IoU {s['iou_object']:.2f}, pixel acc {s['pixel_acc']:.2f}",
                     fontsize=9)
        ax.axis("off")
        plt.show()
        print(f"IoU(object) {s['iou_object']:.3f} | mIoU {s['miou']:.3f} | "
              f"pixel accuracy {s['pixel_acc']:.3f}")
    return s
