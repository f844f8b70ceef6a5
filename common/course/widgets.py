"""Callbacks of the notebooks' ipywidgets demos, as plain functions that tests call directly.

A notebook wires a callback to sliders with ``ipywidgets.interact``; everything the demo
computes lives here, so it is tested without a browser. Each day adds its own section.
"""
from __future__ import annotations

import numpy as np

from common.course import receptive_field as rf
from common.metrics import confusion_matrix, segmentation_scores
from common.ops import transposed_conv2d, transposed_conv_output_size, zero_insert


def interact_demo(callback, **controls):
    """``ipywidgets.interact`` for a demo callback that shows only what the callback draws.

    ``interact`` prints whatever its function returns under the picture; the callbacks here
    return their numbers for the tests, which a student should not see as a raw dict. The
    wrapper keeps the callback's signature (so ``interact`` builds the same controls).

    Args:
        callback: one of the demo functions below.
        **controls: ``interact``'s abbreviations per argument (a range, a list, a widget).

    Returns:
        the ``ipywidgets.interactive`` widget.
    """
    import functools

    import ipywidgets

    @functools.wraps(callback)
    def draw(*args, **kwargs):
        callback(*args, **kwargs)

    return ipywidgets.interact(draw, **controls).widget


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
    0 background, 1 object).

    Args:
        label_mask: (H, W) bool, the true object.
        pred_mask: (H, W) bool, the predicted object before growing/shrinking.
        steps: pixels to grow (> 0) or shrink (< 0), as ``morph_mask``.

    Returns:
        dict(mask, iou_object, miou, pixel_acc): the changed mask and its scores.
    """
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
    object, mIoU and pixel accuracy.

    Args:
        label_mask: (H, W) bool, the true object.
        pred_mask: (H, W) bool, the predicted object.
        steps: pixels to grow (> 0) or shrink (< 0).
        image: optional (H, W, 3) uint8 drawn dimmed underneath.
        show: draw and print (False for tests).

    Returns:
        the dict of ``erode_dilate_scores``.
    """
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


# ----------------------------------------------------------------------------- Day 2


def transposed_conv_demo(stride=2, kernel_size=4, padding=1, size=4, show=True):
    """Widget callback: a transposed conv (转置卷积) of a constant ``size`` x ``size`` map with
    an all-ones ``kernel_size`` kernel, done as the notes teach (zero insertion, padding by
    k - 1 - p, rotated kernel). Each output pixel then counts how many kernel copies overlap
    it: uneven counts are the checkerboard artefact, which vanishes when the kernel size is a
    multiple of the stride (FCN's 2s / s / s/2 layers).

    Args:
        stride: the upsampling factor s.
        kernel_size: k.
        padding: p of the transposed conv.
        size: side of the constant input.
        show: draw and print (False for tests).

    Returns:
        dict(zero_inserted, output, output_size, even): the padded zero-inserted input, the
        overlap counts, their side, and whether the output's interior is constant.
    """
    stride, k, padding, size = int(stride), int(kernel_size), int(padding), int(size)
    if stride < 1 or k < 1 or size < 1 or padding < 0:
        raise ValueError("stride, kernel_size and size must be >= 1 and padding >= 0")
    n_out = transposed_conv_output_size(size, k, stride, padding)
    if n_out < 1:
        raise ValueError(f"padding {padding} leaves no output (size {n_out}); lower it")
    x = np.ones((1, 1, size, size), np.float32)
    z = zero_insert(x, stride)[0, 0]
    q = k - 1 - padding
    zp = np.pad(z, max(q, 0))[max(-q, 0):z.shape[0] + 2 * max(q, 0) - max(-q, 0),
                              max(-q, 0):z.shape[1] + 2 * max(q, 0) - max(-q, 0)]
    y = transposed_conv2d(x, np.ones((1, 1, k, k), np.float32), stride=stride, padding=padding)[0, 0]
    # interior: away from the borders that fewer kernel copies reach
    m = min(k, max(n_out // 2 - 1, 0))
    inner = y[m:n_out - m, m:n_out - m] if n_out > 2 * m else y
    out = dict(zero_inserted=zp, output=y, output_size=n_out, even=bool(inner.min() == inner.max()))
    if show:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(8, 2.9), dpi=80)
        for ax, img, title in zip(axes, [x[0, 0], zp, y],
                                  [f"input {size}x{size}", f"zero-inserted + padded ({q:+d})",
                                   f"output {n_out}x{n_out}: overlap count"]):
            ax.imshow(img, cmap="viridis", interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        plt.show()
        print(f"stride {stride}, kernel {k}, padding {padding}: {size} -> {n_out}; "
              f"interior {'even' if out['even'] else 'UNEVEN (checkerboard)'}")
    return out


# ----------------------------------------------------------------------------- Day 3

RF_PRESETS = ("none", "VGG block (2 conv + pool)", "ResNet stem (7x7 s2 + pool s2)",
              "U-Net levels 0-1")


def rf_stack(preset="none", n_layers=2, kernel=3, stride=1, dilation=1):
    """The layer list of the receptive-field demo: a ``preset`` front (one of ``RF_PRESETS``)
    followed by ``n_layers`` convs of ``kernel`` / ``stride`` / ``dilation`` ('same' padding)."""
    fronts = {"none": [],
              RF_PRESETS[1]: [rf.conv(3), rf.conv(3), rf.pool(2)],
              RF_PRESETS[2]: [rf.conv(7, 2), rf.pool(3, 2, 1)],
              RF_PRESETS[3]: rf.unet_encoder_layers(1, "same")}
    if preset not in fronts:
        raise ValueError(f"preset must be one of {RF_PRESETS}, got {preset!r}")
    if min(kernel, stride, dilation) < 1 or n_layers < 0:
        raise ValueError("kernel, stride and dilation must be >= 1 and n_layers >= 0")
    return fronts[preset] + [rf.conv(kernel, stride, dilation) for _ in range(int(n_layers))]


def rf_demo(preset="none", n_layers=2, kernel=3, stride=1, dilation=1, size=None, show=True):
    """Widget callback: the receptive field of the centre output unit of ``rf_stack(...)``.

    Computes it by the arithmetic and by back-propagation on an input of ``size`` pixels
    (default: a little larger than the field, at most 257), draws the gradient (effective
    receptive field) with the theoretical square, and the field after each layer; raises
    if the input shrinks to nothing.

    Args:
        preset: the front of the stack, one of ``RF_PRESETS``.
        n_layers: convs after the front.
        kernel: their kernel side.
        stride: their stride.
        dilation: their atrous rate.
        size: input side; None for a little more than the field (at most 257).
        show: draw and print (False for tests).

    Returns:
        dict(rows, rf, jump, empirical_size, size): ``receptive_field`` rows, the field and
        jump of the last layer, the measured extent and the input side used.
    """
    layers = rf_stack(preset, n_layers, kernel, stride, dilation)
    if not layers:
        raise ValueError("the stack is empty: choose a preset or n_layers >= 1")
    rows = rf.receptive_field(layers)
    field, jump = rows[-1]["rf"], rows[-1]["jump"]
    if size is None:
        size = min(257, field + 2 * jump + 8) | 1
    rows = rf.receptive_field(layers, size)
    emp = rf.empirical_receptive_field(layers, size)
    out = dict(rows=rows, rf=field, jump=jump, empirical_size=emp["size"], size=size)
    if show:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle

        lo, hi = rf.theoretical_extent(layers, size)
        fig, (a, b) = plt.subplots(1, 2, figsize=(7, 3.2), dpi=80)
        a.imshow(emp["grad"] / emp["grad"].max(), cmap="magma", interpolation="nearest")
        a.add_patch(Rectangle((lo - 0.5, lo - 0.5), hi - lo + 1, hi - lo + 1, fill=False,
                              ec="cyan", lw=1.5))
        a.set_title(f"input {size}x{size}: RF {field} (cyan), jump {jump}", fontsize=9)
        a.axis("off")
        b.plot(range(1, len(rows) + 1), [r["rf"] for r in rows], "o-")
        b.set_xticks(range(1, len(rows) + 1))
        b.set_xlabel("layer")
        b.set_ylabel("receptive field (pixels)")
        b.grid(alpha=0.3)
        fig.tight_layout()
        plt.show()
        print(rf.format_table(rows))
        print(f"theoretical RF {field} | measured extent {emp['size']} "
              f"(clipped to the {size}-pixel input)")
    return out


# ----------------------------------------------------------------------------- Day 4


def atrous_footprint(rates, size=None):
    """How many paths lead from each input pixel to the centre output unit of a stack of
    3x3 convs with dilations ``rates`` (an int is one layer). Zeros inside the covered
    square are the holes ("gridding", 网格效应) that equal rates leave and that mixed rates
    such as multi-grid (1, 2, 4) fill.

    Args:
        rates: dilation of each layer, or one int.
        size: odd side of the result, at least the field ``2 * sum(rates) + 1``; default
            the field plus a 2-pixel margin.

    Returns:
        int64 array (size, size) of path counts.
    """
    from scipy import ndimage as ndi

    rates = [int(rates)] if np.isscalar(rates) else [int(r) for r in rates]
    if not rates or min(rates) < 1:
        raise ValueError(f"rates must be positive integers, got {rates}")
    extent = 2 * sum(rates) + 1
    size = extent + 4 if size is None else int(size)
    if size < extent or size % 2 == 0:
        raise ValueError(f"size must be odd and at least {extent} for rates {rates}, got {size}")
    paths = np.zeros((size, size), np.int64)
    paths[size // 2, size // 2] = 1
    for r in rates:     # back-propagate the centre through each layer: a dilated 3x3 of ones
        k = np.zeros((2 * r + 1, 2 * r + 1), np.int64)
        k[::r, ::r] = 1
        paths = ndi.convolve(paths, k, mode="constant")
    return paths


def atrous_demo(rate=2, layers=1, multi_grid=False, size=None, show=True):
    """Widget callback: which input pixels a stack of ``layers`` 3x3 convs at ``rate`` sees
    (with ``multi_grid`` the rates are rate x (1, 2, 4, 1, 2, 4, ...)). Prints the receptive
    field, the pixels used inside it and the parameters (always 9 per channel pair and
    layer).

    Args:
        rate: the base atrous rate.
        layers: number of 3x3 convs.
        multi_grid: multiply the rates by (1, 2, 4) in turn (DeepLab V3's multi-grid).
        size: side of the drawn input (see ``atrous_footprint``).
        show: draw and print (False for tests).

    Returns:
        dict(rates, footprint, rf, used, covered_fraction).
    """
    grid = (1, 2, 4)
    rates = [rate * (grid[i % 3] if multi_grid else 1) for i in range(int(layers))]
    fp = atrous_footprint(rates, size)
    rf = 2 * sum(rates) + 1
    used = int((fp > 0).sum())
    out = dict(rates=rates, footprint=fp, rf=rf, used=used, covered_fraction=used / rf ** 2)
    if show:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(3.2, 3.2), dpi=80)
        ax.imshow(fp > 0, cmap="Blues", vmin=0, vmax=1.4, interpolation="nearest")
        ax.set_title(f"rates {rates}: RF {rf}x{rf}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        plt.show()
        print(f"rates {rates} | receptive field {rf}x{rf} | input pixels used {used} "
              f"({100 * out['covered_fraction']:.0f}%) | weights per channel pair {9 * len(rates)}")
    return out
