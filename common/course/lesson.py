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
proves nothing). ``instance_floors`` and ``panoptic_floors`` are the same two labellers for
Day 6's mask AP and panoptic quality.
"""
from __future__ import annotations

import numpy as np

from common.labels import LABEL_DIVISOR
from common.metrics import confusion_matrix, mask_ap, panoptic_quality, segmentation_scores


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


def instance_floors(targets, thing_ids, num_classes, seed=0):
    """The mask AP (AP@[.5:.95]) of the two labellers that ignore the image, on instance targets.

    The majority labeller answers the most frequent class everywhere: one whole-image mask of it
    if it is a thing class, no object at all if it is stuff (the sky, on the course's scenes). The
    frequency-matched random one answers, for each thing class, one mask of pixels drawn with the
    class's pixel share, with score 1.

    Args:
        targets: one dict per image with ``semantic`` (H, W) and the instances ``mask_ap`` reads.
        thing_ids: the thing classes.
        num_classes: K.
        seed: the random labeller's generator seed.

    Returns:
        dict ``majority`` and ``random`` mask AP.
    """
    sem = np.stack([t["semantic"] for t in targets])
    freq = np.bincount(sem.ravel(), minlength=num_classes) / sem.size
    things, rng, shape = np.asarray(thing_ids, np.int64), np.random.default_rng(seed), sem.shape[1:]
    top = int(freq.argmax())
    majority = (dict(masks=np.ones((1,) + shape, bool), labels=np.array([top]), scores=np.ones(1, np.float32))
                if top in things else
                dict(masks=np.zeros((0,) + shape, bool), labels=np.zeros(0, np.int64), scores=np.zeros(0, np.float32)))
    randoms = [dict(masks=rng.random((len(things),) + shape) < freq[things, None, None], labels=things,
                    scores=np.ones(len(things), np.float32)) for _ in targets]
    return dict(majority=float(mask_ap([majority] * len(targets), targets)["ap"]),
                random=float(mask_ap(randoms, targets)["ap"]))


def panoptic_floors(panoptic, thing_ids, stuff_ids, num_classes, label_divisor=LABEL_DIVISOR,
                    ignore_index=255, seed=0):
    """PQ and things PQ of the two labellers that ignore the image, on panoptic labels.

    The majority labeller paints the most frequent class everywhere (one segment); the
    frequency-matched random one draws each pixel's class with the classes' pixel shares and makes
    one segment per class.

    Args:
        panoptic: int array (N, H, W) of ``class * label_divisor + instance`` labels.
        thing_ids: the thing classes.
        stuff_ids: the stuff classes.
        num_classes: K.
        label_divisor: the panoptic encoding's divisor.
        ignore_index: the class of void pixels, left out of the frequencies.
        seed: the random labeller's generator seed.

    Returns:
        dict ``pq`` and ``things_pq``, each a dict ``majority`` and ``random``.
    """
    cls = np.asarray(panoptic) // label_divisor
    valid = cls != ignore_index
    freq = np.bincount(cls[valid].ravel(), minlength=num_classes) / valid.sum()
    random = np.random.default_rng(seed).choice(num_classes, cls.shape, p=freq)
    guesses = dict(majority=np.full_like(panoptic, freq.argmax() * label_divisor),
                   random=random * label_divisor + np.isin(random, thing_ids))     # one segment per thing class
    pqs = {k: panoptic_quality(g, panoptic, thing_ids, stuff_ids) for k, g in guesses.items()}
    return dict(pq={k: float(v["pq"]) for k, v in pqs.items()},
                things_pq={k: float(v["things"][0]) for k, v in pqs.items()})


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
