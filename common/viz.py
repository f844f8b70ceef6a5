"""Pictures: a fixed palette, colourised labels, overlays, grids, curves, confusion matrices."""
from __future__ import annotations

import numpy as np

# the palette lives with the label conventions (common.labels); viz.palette is the name notebooks use
from .labels import IGNORE_COLOR, LABEL_DIVISOR, palette, voc_palette  # noqa: F401

_PALETTE = palette()


def colorize(label):
    """Integer label map (..., H, W) -> RGB (..., H, W, 3) uint8 with the fixed palette.

    Args:
        label: integer array with values in [0, 255] (255, ignore, is white).

    Returns:
        uint8 array of ``label``'s shape plus a last axis of 3.
    """
    label = np.asarray(label)
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(f"label values must be in [0, 255], got [{label.min()}, {label.max()}]")
    return _PALETTE[label.astype(np.int64)]


def colorize_instances(instance, seed=3):
    """Instance-id map -> RGB: black for 0, a random but fixed colour per id.

    Args:
        instance: non-negative integer map (..., H, W), 0 for no instance.
        seed: seed of the colours (same seed, same colour for an id).

    Returns:
        uint8 array (..., H, W, 3).
    """
    instance = np.asarray(instance)
    colors = np.random.default_rng(seed).integers(60, 256, size=(int(instance.max()) + 1, 3))
    colors[0] = 0
    return colors[instance].astype(np.uint8)


def instance_map(pred, score_thresh=0.5):
    """One instance-id map from an instance model's output for one image: detection ``k`` is
    painted as ``k + 1`` (0: none), in ascending score, so where masks overlap the most
    confident one is on top.

    Args:
        pred: dict with ``masks`` (n, H, W) bool and ``scores`` (n,) (Mask R-CNN, SOLO, UPSNet).
        score_thresh: detections scoring below it are left out.

    Returns:
        int64 array (H, W), for ``colorize_instances``.
    """
    masks, scores = np.asarray(pred["masks"], bool), np.asarray(pred["scores"])
    out = np.zeros(masks.shape[1:], np.int64)
    for k in np.argsort(scores, kind="stable"):       # at most a few dozen detections
        if scores[k] >= score_thresh:
            out[masks[k]] = k + 1
    return out


def overlay(image, label, alpha=0.5):
    """Blend the colourised ``label`` over an RGB uint8 ``image``.

    Args:
        image: uint8 (H, W, 3).
        label: integer class map (H, W).
        alpha: weight of the label colours (0 image only, 1 labels only).

    Returns:
        uint8 (H, W, 3).
    """
    return (np.asarray(image) * (1 - alpha) + colorize(label) * alpha).astype(np.uint8)


def show_grid(rows, titles=None, size=2.2, suptitle=None):
    """Show a grid of pictures: ``rows`` is a list of rows, each a list of arrays.

    2-D integer arrays are label maps (colourised), (H, W, 3) arrays are images.

    Args:
        rows: list of rows, each a list of arrays (None leaves a cell empty).
        titles: optional titles in the same nesting.
        size: inches per cell.
        suptitle: optional figure title.

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    nr, nc = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(nr, nc, figsize=(size * nc, size * nr), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(nc):
            ax = axes[i][j]
            ax.axis("off")
            if j >= len(row) or row[j] is None:
                continue
            a = np.asarray(row[j])
            ax.imshow(colorize(a) if a.ndim == 2 and a.dtype.kind in "iub" else a,
                      interpolation="nearest")
            if titles is not None and i < len(titles) and j < len(titles[i]):
                ax.set_title(titles[i][j], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def legend(class_names, ax=None):
    """Colour patches naming each class (for a figure with colourised labels).

    Args:
        class_names: names in class-id order.
        ax: axis to attach the legend to; default the current one.
    """
    import matplotlib.patches as mpatches
    import matplotlib.pyplot as plt

    handles = [mpatches.Patch(color=_PALETTE[i] / 255, label=f"{i} {n}")
               for i, n in enumerate(class_names)]
    (ax or plt.gca()).legend(handles=handles, loc="center left", bbox_to_anchor=(1, 0.5),
                             fontsize=8, frameon=False)


def plot_history(history, ax=None):
    """Training loss per iteration and validation mIoU per evaluation, on twin axes.

    Args:
        history: dict with ``iter`` and ``loss`` lists, and optionally ``eval_iter`` and
            ``miou`` (``Trainer.history``).
        ax: axis to draw on; default a new figure.

    Returns:
        the loss axis.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    ax.plot(history["iter"], history["loss"], color="tab:blue", lw=1, label="train loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss", color="tab:blue")
    if history.get("eval_iter"):
        ax2 = ax.twinx()
        ax2.plot(history["eval_iter"], history["miou"], "o-", color="tab:red", label="val mIoU")
        ax2.set_ylabel("val mIoU", color="tab:red")
        ax2.set_ylim(0, 1)
    return ax


def plot_confusion(conf, class_names=None, ax=None, normalize=True):
    """Confusion matrix as an image: rows ground truth, columns prediction.

    Args:
        conf: (K, K) counts, as ``metrics.confusion_matrix``.
        class_names: K tick labels; default the class ids.
        ax: axis to draw on; default a new figure.
        normalize: divide each row by its total (per-class recall), else raw counts.

    Returns:
        the axis.
    """
    import matplotlib.pyplot as plt

    conf = np.asarray(conf, np.float64)
    shown = conf / np.maximum(conf.sum(1, keepdims=True), 1) if normalize else conf
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(shown, cmap="Blues", vmin=0)
    k = conf.shape[0]
    names = class_names or [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    for i in range(k):
        for j in range(k):
            if conf[i, j]:
                ax.text(j, i, f"{shown[i, j]:.2f}" if normalize else int(conf[i, j]),
                        ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > shown.max() / 2 else "black")
    return ax


def colorize_panoptic(panoptic, label_divisor=LABEL_DIVISOR):
    """Panoptic map (``class * label_divisor + instance``) -> RGB uint8: the class colour,
    each thing instance a little lighter or darker than its neighbours, white outlines
    between segments (so two touching objects of one class stay visibly apart).

    Args:
        panoptic: integer map (..., H, W).
        label_divisor: the encoding's divisor (``common.labels.LABEL_DIVISOR``).

    Returns:
        uint8 array (..., H, W, 3).
    """
    pan = np.asarray(panoptic, np.int64)
    cls, inst = pan // label_divisor, pan % label_divisor
    rgb = colorize(cls).astype(np.float32)
    # A fixed brightness per instance id (golden-ratio steps spread neighbouring ids apart).
    shade = np.where(inst > 0, 0.6 + 0.6 * ((inst * 0.618) % 1.0), 1.0)
    rgb = np.clip(rgb * shade[..., None], 0, 255)
    edge = np.zeros(pan.shape, bool)
    edge[..., 1:, :] |= pan[..., 1:, :] != pan[..., :-1, :]
    edge[..., :, 1:] |= pan[..., :, 1:] != pan[..., :, :-1]
    rgb[edge] = 255
    return rgb.astype(np.uint8)


def mask_to_rgb(mask, color=(255, 255, 255)):
    """Boolean mask (H, W) -> RGB uint8: ``color`` where True, black elsewhere (binary masks
    would otherwise be drawn with the palette's class-0 and class-1 colours).

    Args:
        mask: boolean (H, W).
        color: RGB of the True pixels.

    Returns:
        uint8 (H, W, 3).
    """
    mask = np.asarray(mask, bool)
    return (mask[..., None] * np.asarray(color, np.uint8)).astype(np.uint8)


def gray_to_rgb(image, vmin=None, vmax=None):
    """Grayscale image (H, W), any dtype -> RGB uint8 scaled from [vmin, vmax] (default: its
    own range), so ``show_grid`` draws it in gray and not as a label map or in false colour.

    Args:
        image: (H, W) array.
        vmin: value drawn black; default the image's minimum.
        vmax: value drawn white; default the image's maximum.

    Returns:
        uint8 (H, W, 3).
    """
    a = np.asarray(image, np.float64)
    lo = a.min() if vmin is None else vmin
    hi = a.max() if vmax is None else vmax
    g = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1) * 255
    return np.repeat(g.astype(np.uint8)[..., None], 3, axis=-1)


def draw_boxes(ax, boxes, labels=None, classes=None, scores=None, color="w", lw=1.0):
    """Outline boxes on a matplotlib axis, each captioned with its class name and score.

    Args:
        ax: the matplotlib axis (showing the image in pixel coordinates).
        boxes: (n, 4) ``x0, y0, x1, y1`` with ``x1, y1`` exclusive (``common.ops.boxes``).
        labels: (n,) class ids, or None for no class caption.
        classes: class names indexed by label; None shows the label number.
        scores: (n,) scores, or None.
        color: outline and caption colour.
        lw: line width.
    """
    import matplotlib.patches as patches

    for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        # pixel i spans i - 0.5 .. i + 0.5 in imshow's coordinates
        ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                       edgecolor=color, linewidth=lw))
        text = []
        if labels is not None:
            lab = int(np.asarray(labels)[k])
            text.append(classes[lab] if classes is not None else str(lab))
        if scores is not None:
            text.append(f"{float(np.asarray(scores)[k]):.2f}")
        if text:
            ax.text(x0 - 0.5, y0 - 1.5, " ".join(text), color=color, fontsize=6)
