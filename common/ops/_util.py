"""Shape helpers shared by the operators."""
import numpy as np


def pair(v, name="value"):
    """``3`` -> ``(3, 3)``; ``(3, 5)`` stays."""
    if np.isscalar(v):
        return int(v), int(v)
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v}")
    return v


def as_batch(x, name="x"):
    """(C, H, W) -> (1, C, H, W) float32 and a function that undoes it on the result."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        return x[None], lambda y: y[0]
    if x.ndim == 4:
        return x, lambda y: y
    raise ValueError(f"{name} must be (C, H, W) or (N, C, H, W), got shape {x.shape}")
