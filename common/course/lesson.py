"""The lesson checks' floors: what a labeller that never looks at the image scores.

A notebook's last cell checks that its trained model learned something. "Better than nothing"
needs a number for nothing, measured on the same held-out labels:

- the **majority** labeller answers the most frequent class everywhere;
- the **frequency-matched random** labeller answers class ``c`` with probability ``f_c``, the
  class's share of the labelled pixels, independently of the image. Its expected confusion
  matrix is ``n_i * f_j`` (row i: the pixels of class i, spread over the answers as the
  frequencies say), so its expected IoU of class c is ``f_c / (2 - f_c)``.

``check_beats_floors`` prints both floors and the required score, and asserts two things: the
trained model clears the higher floor by ``margin``, and the same check fails on an untrained
model of the same architecture, so the check could fail (a check that an untrained model passes
proves nothing).
"""
from __future__ import annotations

import numpy as np

from common.metrics import confusion_matrix, segmentation_scores


def floors(labels, num_classes, ignore_index=255):
    """The mIoU of the two labellers that ignore the image, on ``labels``.

    Args:
        labels: int array of any shape (e.g. (N, H, W)) of held-out labels.
        num_classes: K.
        ignore_index: label value that is not scored.

    Returns:
        dict ``majority`` and ``random`` (the frequency-matched random labeller's expected
        mIoU), both computed with ``common.metrics.segmentation_scores``, so absent classes are
        left out of the mean exactly as for the model.
    """
    labels = np.asarray(labels).ravel()
    labels = labels[labels != ignore_index].astype(np.int64)
    if labels.size == 0:
        raise ValueError("labels: every pixel is ignore_index, there is nothing to score")
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    majority = segmentation_scores(confusion_matrix(np.full_like(labels, counts.argmax()), labels,
                                                    num_classes))["miou"]
    expected = np.outer(counts, counts / counts.sum())        # E[conf]: row i spread as the frequencies
    return dict(majority=float(majority), random=float(segmentation_scores(expected)["miou"]))


def check_beats_floors(trained, untrained, floor, margin, what="mIoU"):
    """Assert that ``trained`` clears the higher floor by ``margin`` and ``untrained`` does not.

    Prints one line: the floors, the required score, the untrained and the trained model's.

    Args:
        trained: the trained model's score on the held-out labels.
        untrained: the score of the same architecture, freshly initialised, on the same labels.
        floor: ``floors(...)`` of those labels.
        margin: how far above the higher floor a model must be to pass.
        what: the score's name, for the printed line.

    Returns:
        the required score (``max(floor) + margin``).

    Raises:
        AssertionError: the trained model does not pass, or the untrained one does (the check
            would then prove nothing: raise the margin).
    """
    required = max(floor.values()) + margin
    print(f"floors ({what}): majority {floor['majority']:.3f}, frequency-matched random "
          f"{floor['random']:.3f}; required > {required:.3f} (+{margin:g}); "
          f"untrained {untrained:.3f}, trained {trained:.3f}")
    assert untrained <= required, (f"an untrained model scores {untrained:.3f}, above the required "
                                   f"{required:.3f}: this check cannot fail; raise the margin")
    assert trained > required, f"the trained model scores {trained:.3f}, not above {required:.3f}"
    return required
