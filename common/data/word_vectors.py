"""Word vectors of class names, for GINet's semantic graph (``common.models.graph``).

No download is possible, so ``word_vectors.npz`` beside this module holds count-based word
vectors (positive PMI + truncated SVD, the classic method GloVe refines) computed by
``make_word_vectors`` from a small English corpus stored in the same file. The file is
reproducible: ``make_word_vectors(corpus)`` gives exactly the shipped vectors (tested).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

WORD_VECTORS = str(Path(__file__).with_name("word_vectors.npz"))


def make_word_vectors(corpus, dim=16, window=3):
    """Count-based word vectors: co-occurrence in a +-``window`` word window, positive PMI,
    truncated SVD (U * sqrt(S)), rows L2-normalised; the sign of each SVD axis is fixed
    so that its largest-magnitude entry is positive. Deterministic: the same corpus gives
    the same vectors.

    Args:
        corpus: sentences (str); lower-cased, split at spaces, commas and full stops.
        dim: vector dimension.
        window: words on each side that count as co-occurring.

    Returns:
        (words, vectors): the sorted vocabulary and float32 (V, dim) unit vectors.
    """
    sents = [s.lower().replace(".", " ").replace(",", " ").split() for s in corpus]
    words = sorted({w for s in sents for w in s})
    index = {w: i for i, w in enumerate(words)}
    counts = Counter()
    for s in sents:
        ids = [index[w] for w in s]
        for i, a in enumerate(ids):
            for b in ids[max(0, i - window):i]:
                counts[a, b] += 1
                counts[b, a] += 1
    co = np.zeros((len(words), len(words)))
    if counts:
        ij = np.array(list(counts.keys()))
        co[ij[:, 0], ij[:, 1]] = list(counts.values())
    total, row = co.sum(), co.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(co * total / (row * row.T))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    u, s, _ = np.linalg.svd(ppmi)
    vec = u[:, :dim] * np.sqrt(s[:dim])
    # an SVD axis has no sign of its own: make each axis's largest-magnitude entry positive
    vec = vec * np.sign(vec[np.argmax(np.abs(vec), 0), np.arange(vec.shape[1])])
    vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
    return words, vec.astype(np.float32)


def load_word_vectors(classes, path=WORD_VECTORS):
    """(M, dim) float32 word vectors of the class names, from the shipped file.

    Args:
        classes: M class names (KeyError naming the missing ones).
        path: an ``.npz`` with ``words`` and ``vectors`` (default the shipped one).

    Returns:
        float32 array (M, dim), in the order of ``classes``.
    """
    data = np.load(path)
    index = {w: i for i, w in enumerate(data["words"].tolist())}
    missing = [c for c in classes if c not in index]
    if missing:
        raise KeyError(f"{path} has no word vector for {missing}; pass embeddings= to GINet")
    return data["vectors"][[index[c] for c in classes]]
