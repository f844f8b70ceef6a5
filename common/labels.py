"""Label conventions shared by the data, the models, the metrics and the pictures.

Kept in a module that imports nothing but NumPy, so that every layer of the package
(``common.data``, ``common.metrics``, ``common.viz``, ``common.models``) can use them.
"""
import numpy as np

# A panoptic label map stores ``category * LABEL_DIVISOR + instance`` per pixel (instance 0
# for stuff), as Cityscapes and Panoptic-DeepLab do; at most LABEL_DIVISOR - 1 instances.
LABEL_DIVISOR = 1000

# Void (unlabelled, not scored) pixels: semantic label 255, the ``ignore_index`` of the losses
# and metrics; in a panoptic map category 255, i.e. ``PANOPTIC_VOID`` (COCO's unlabelled and
# crowd regions, UPSNet's unknown pixels, Panoptic-DeepLab's unassigned ones alike).
PANOPTIC_VOID = 255 * LABEL_DIVISOR


# The colour of void (ignored) pixels in pictures.
IGNORE_COLOR = (255, 255, 255)


def voc_palette(n=256):
    """The PASCAL VOC colour map (n, 3) uint8, the palette of VOC's label PNGs: bits
    0, 1, 2 of the class id give the top bit of R, G, B, bits 3, 4, 5 the next, and so on.

    Args:
        n: number of entries.

    Returns:
        uint8 array (n, 3).
    """
    idx = np.arange(n)
    voc = np.zeros((n, 3), np.int64)
    for bit in range(8):
        for ch in range(3):
            voc[:, ch] |= ((idx >> (3 * bit + ch)) & 1) << (7 - bit)
    return voc.astype(np.uint8)


def palette(n=256):
    """The course's fixed (n, 3) uint8 palette: hand-picked colours for the course's classes,
    then the PASCAL VOC bit pattern for the rest; entry 255 (ignore) is white.

    Args:
        n: number of entries (256 covers every uint8 label).

    Returns:
        uint8 array (n, 3).
    """
    base = np.array([[128, 178, 235], [60, 140, 50], [30, 80, 160], [90, 90, 90],
                     [230, 60, 60], [250, 190, 40], [170, 80, 200], [40, 200, 200]], np.uint8)
    pal = voc_palette(n)
    pal[: min(n, len(base))] = base[: min(n, len(base))]
    if n > 255:
        pal[255] = IGNORE_COLOR
    return pal
