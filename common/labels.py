"""Label conventions shared by the data, the models, the metrics and the pictures.

Kept in a module that imports nothing, so that every layer of the package (``common.data``,
``common.metrics``, ``common.viz``, ``common.models``) can use them without import cycles.
"""

# A panoptic label map stores ``category * LABEL_DIVISOR + instance`` per pixel (instance 0
# for stuff), as Cityscapes and Panoptic-DeepLab do; at most LABEL_DIVISOR - 1 instances.
LABEL_DIVISOR = 1000

# Void (unlabelled, not scored) pixels: semantic label 255, the ``ignore_index`` of the losses
# and metrics; in a panoptic map category 255, i.e. ``PANOPTIC_VOID`` (COCO's unlabelled and
# crowd regions, UPSNet's unknown pixels, Panoptic-DeepLab's unassigned ones alike).
PANOPTIC_VOID = 255 * LABEL_DIVISOR
