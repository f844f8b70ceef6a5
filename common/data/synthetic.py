"""Synthetic scenes and clips: the course's built-in, offline, seeded dataset.

A scene is textured "stuff" (sky, grass, water, road) with "thing" instances drawn on top
(rotated, scaled, coloured, occluding each other). One call returns every annotation the
course needs, all from the same pixels:

- ``image``     (H, W, 3) uint8 RGB
- ``semantic``  (H, W) uint8 class per pixel
- ``instance``  (H, W) int32, 0 for stuff, 1..n for the visible thing instances
- ``panoptic``  (H, W) int32, ``class * LABEL_DIVISOR + instance`` (instance 0 for stuff)
- ``boxes``     (n, 4) float32 x0, y0, x1, y1 of each instance's visible pixels (x1, y1 exclusive)
- ``masks``     (n, H, W) bool, ``labels`` (n,) int64 class of each instance

Variants: ``'scenes'`` (things are discs, squares and triangles: shape decides the class)
``'context'`` (things are one hull shape with one colour distribution: it is a *boat*
on water and a *car* on road, so only the surroundings tell the class; every scene holds
both surfaces) and ``'harbour_street'`` (the same hulls and classes, but a scene is a
harbour, all water, or a street, all road: the whole image tells every hull's class).
Clips: ``make_clip`` moves a scene's things across frames; ``convoy_clip`` makes pairs of
identical discs ride a carousel, where greedy and Hungarian linking differ (Day 6, video).
Everything is drawn with NumPy and OpenCV, a few hundred microseconds per 96x96 scene.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np

from ..labels import LABEL_DIVISOR, PANOPTIC_VOID  # noqa: F401  (re-exported by common.data)

STUFF = ("sky", "grass", "water", "road")
# Class ids: the index into ``Variant.classes``. Stuff is the same in both variants.
SKY, GRASS, WATER, ROAD = range(len(STUFF))
DISC, SQUARE, TRIANGLE = 4, 5, 6        # the things of 'scenes' (shape decides the class)
BOAT, CAR = 4, 5                        # the things of 'context' (the surface decides)


@dataclass(frozen=True)
class Variant:
    name: str
    classes: Tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def stuff_ids(self):
        return tuple(range(len(STUFF)))

    @property
    def thing_ids(self):
        return tuple(range(len(STUFF), len(self.classes)))


VARIANTS = {
    "scenes": Variant("scenes", STUFF + ("disc", "square", "triangle")),
    "context": Variant("context", STUFF + ("boat", "car")),
    "harbour_street": Variant("harbour_street", STUFF + ("boat", "car")),
}
assert VARIANTS["scenes"].classes.index("triangle") == TRIANGLE and VARIANTS["context"].classes.index("car") == CAR

# Mean colour of each stuff class (RGB) and the texture that makes it recognisable.
_STUFF_RGB = np.array([[120, 170, 235], [70, 150, 60], [40, 90, 170], [95, 95, 100]], np.float32)


def get_variant(variant: str) -> Variant:
    """The class list of a synthetic variant.

    Args:
        variant: a key of ``VARIANTS``, e.g. ``'scenes'`` or ``'context'`` (module docstring).

    Returns:
        Variant with ``name``, ``classes`` (stuff first), ``num_classes``, ``stuff_ids`` and
        ``thing_ids``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    return VARIANTS[variant]


def _as_rng(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _size2(size):
    h, w = (size, size) if np.isscalar(size) else size
    if h < 16 or w < 16:
        raise ValueError(f"size must be at least 16x16, got {size!r}")
    return int(h), int(w)


def _stuff_layout(rng, h, w, variant):
    """Label map of stuff: sky above a wavy horizon, then two or three ground regions."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = h * rng.uniform(0.2, 0.4) + h * 0.04 * np.sin(xx[0] / w * rng.uniform(2, 6) + rng.uniform(0, 6))
    # Ground regions are split by slanted lines; the context variant always has water and road.
    if variant.name == "context":
        ground = rng.permutation([WATER, ROAD])
    elif variant.name == "harbour_street":                # one surface: a harbour or a street
        ground = [int(rng.choice([WATER, ROAD]))]
    else:
        ground = rng.choice([GRASS, WATER, ROAD], size=rng.integers(2, 4), replace=False)
    cuts = np.sort(rng.uniform(0.25, 0.75, size=len(ground) - 1)) * w
    slope = rng.uniform(-0.6, 0.6, size=len(cuts))
    region = np.zeros((h, w), np.int64)
    for c, s in zip(cuts, slope):
        region += (xx > c + s * (yy - h / 2))
    label = np.asarray(ground, np.uint8)[region]
    label[yy < horizon[None, :]] = SKY
    return label


def _texture(rng, label, h, w):
    """Per-class colour plus a class-specific texture and noise, fully vectorised."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = _STUFF_RGB[label] * rng.uniform(0.85, 1.15, size=(1, 1, 3)).astype(np.float32)
    tex = np.stack([
        8 * (yy / h),                                                 # sky: gentle gradient
        14 * rng.standard_normal((h, w)).astype(np.float32),          # grass: grainy
        12 * np.sin(yy * 1.3 + 0.5 * np.sin(xx * 0.3)),              # water: ripples
        10 * ((xx.astype(np.int64) // 6 + yy.astype(np.int64) // 6) % 2) - 5,   # road: tiles
    ])
    img = base + np.take_along_axis(tex, label[None].astype(np.int64), 0)[0][..., None]
    return img


def _thing_polygon(rng, kind, cx, cy, r):
    """Vertices (k, 2) of a thing of ``kind`` centred at (cx, cy) with radius r, rotated."""
    a = rng.uniform(0, 2 * np.pi)
    if kind == "disc":
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t) * rng.uniform(0.8, 1.0)], 1)
    elif kind == "square":
        pts = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * 0.8
    elif kind == "triangle":
        t = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) - np.pi / 2
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    else:  # the hull of the context variant: a trapezoid with a cabin, never rotated much
        pts = np.array([[-1, 0.1], [1, 0.1], [0.7, 0.5], [-0.7, 0.5], [-1, 0.1],
                        [-0.4, 0.1], [-0.3, -0.4], [0.3, -0.4], [0.4, 0.1]], np.float64)
        a = rng.uniform(-0.15, 0.15)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return pts @ rot.T * r + [cx, cy]


def make_scene(seed=0, size=96, variant="scenes", max_things=5):
    """One synthetic scene with all its annotations (see the module docstring).

    ``seed`` is an int or a ``np.random.Generator``; the same seed gives the same scene.

    Args:
        seed: int or ``np.random.Generator``.
        size: image side, or (H, W); at least 16.
        variant: a key of ``VARIANTS`` (``'scenes'``, ``'context'``, ...).
        max_things: at most this many things are drawn (1..max_things, fewer stay visible
            when one hides another).

    Returns:
        dict with ``image``, ``semantic``, ``instance``, ``panoptic``, ``boxes``, ``masks``,
        ``labels`` (shapes and dtypes in the module docstring) and ``classes`` (the
        variant's class names).
    """
    rng = _as_rng(seed)
    h, w = _size2(size)
    var = get_variant(variant)
    stuff = _stuff_layout(rng, h, w, var)
    semantic = stuff.copy()
    img = _texture(rng, stuff, h, w)
    instance = np.zeros((h, w), np.int32)
    kinds = {DISC: "disc", SQUARE: "square", TRIANGLE: "triangle"}
    n = rng.integers(1, max_things + 1)
    drawn = []
    for i in range(n):
        r = rng.uniform(0.07, 0.16) * min(h, w)
        if var.name in ("context", "harbour_street"):
            # Park the hull well inside water or road (at least r from the edge of that
            # surface), so the surroundings, and only they, decide boat or car.
            surface = int(rng.choice([WATER, ROAD])) if var.name == "context" else int(stuff[-1, 0])
            inside = cv2.distanceTransform((stuff == surface).astype(np.uint8), cv2.DIST_L2, 3)
            spots = np.flatnonzero(inside.ravel() > 0.8 * r)
            if len(spots) == 0:
                spots = np.flatnonzero(inside.ravel() == inside.max())
            cy, cx = divmod(int(spots[rng.integers(len(spots))]), w)
            cls = BOAT if surface == WATER else CAR
            kind = "hull"
        else:
            cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.15, 0.95) * h
            cls = int(rng.integers(DISC, TRIANGLE + 1))
            kind = kinds[cls]
        pts = _thing_polygon(rng, kind, cx, cy, r)
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        mask = mask.astype(bool)
        hue = rng.uniform(0, 180)
        rgb = cv2.cvtColor(np.array([[[hue, 200, 230]]], np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
        shade = 1 - 0.25 * (np.mgrid[0:h, 0:w][0] - cy) / max(r, 1)   # lit from above
        img[mask] = (rgb[None, :] * np.clip(shade[mask], 0.6, 1.3)[:, None])
        semantic[mask] = cls
        instance[mask] = i + 1
        drawn.append(cls)
    img += rng.normal(0, 4, size=img.shape)
    image = np.clip(img, 0, 255).astype(np.uint8)

    # Instances fully hidden by later ones vanish; the rest are renumbered 1..n.
    keep = [int(i) for i in np.unique(instance) if i > 0]
    remap = np.zeros(n + 1, np.int32)
    remap[keep] = np.arange(1, len(keep) + 1)
    instance = remap[instance]
    labels = np.array([drawn[k - 1] for k in keep], np.int64)
    masks = instance[None] == np.arange(1, len(keep) + 1)[:, None, None]
    boxes = np.zeros((len(keep), 4), np.float32)
    for j, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        boxes[j] = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    panoptic = semantic.astype(np.int32) * LABEL_DIVISOR + instance
    return dict(image=image, semantic=semantic, instance=instance, panoptic=panoptic,
                boxes=boxes, masks=masks, labels=labels, classes=var.classes)


def make_scenes(n, size=96, seed=0, variant="scenes"):
    """``n`` scenes stacked: images (n, H, W, 3) uint8 and semantic labels (n, H, W) uint8.

    Scene i uses the seed sequence (seed, i), so a split is reproducible and two seeds
    give disjoint scenes.

    Args:
        n: number of scenes.
        size: image side, or (H, W).
        seed: int, the split's seed.
        variant: a key of ``VARIANTS`` (``'scenes'``, ``'context'``, ...).

    Returns:
        (images, labels): uint8 arrays (n, H, W, 3) and (n, H, W).
    """
    images, labels = [], []
    for i in range(n):
        s = make_scene(np.random.default_rng([seed, i]), size, variant)
        images.append(s["image"])
        labels.append(s["semantic"])
    h, w = _size2(size)
    return (np.stack(images) if n else np.zeros((0, h, w, 3), np.uint8),
            np.stack(labels) if n else np.zeros((0, h, w), np.uint8))


def make_clip(seed=0, num_frames=8, size=64, num_things=3, variant="scenes"):
    """A short video: things glide across a static background, crossing and occluding.

    Returns ``frames`` (T, H, W, 3) uint8, ``semantic`` (T, H, W) uint8, ``instance``
    (T, H, W) int32 with the same id for the same object in every frame (0 = stuff), and
    ``labels`` {id: class}. Objects keep a fixed depth order (higher id in front).

    Args:
        seed: int or ``np.random.Generator``.
        num_frames: number of frames T.
        size: frame side, or (H, W).
        num_things: number of moving things (ids 1..num_things).
        variant: only ``'scenes'`` (a hull would change class between water and road).

    Returns:
        dict with ``frames``, ``semantic``, ``instance`` and ``labels`` as above.
    """
    if variant != "scenes":
        # A hull gliding from water onto road would change class mid-clip.
        raise ValueError(f"make_clip supports variant='scenes' only, got {variant!r}")
    rng = _as_rng(seed)
    h, w = _size2(size)
    var = get_variant(variant)
    stuff = _stuff_layout(rng, h, w, var)
    background = _texture(rng, stuff, h, w)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    semantic = np.repeat(stuff[None], num_frames, 0)
    instance = np.zeros((num_frames, h, w), np.int32)
    kinds = {DISC: "disc", SQUARE: "square", TRIANGLE: "triangle"}
    objs = []
    for k in range(num_things):
        cls = int(rng.integers(DISC, TRIANGLE + 1))
        start = np.array([rng.uniform(0.15, 0.85) * w, rng.uniform(0.3, 0.85) * h])
        # Alternate directions so that paths cross in the middle of the clip.
        end = np.array([w - start[0], rng.uniform(0.3, 0.85) * h])
        r = rng.uniform(0.1, 0.16) * min(h, w)
        hue = (k * 60 + rng.uniform(0, 30)) % 180
        rgb = cv2.cvtColor(np.array([[[hue, 200, 230]]], np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
        shape_rng_seed = int(rng.integers(1 << 31))
        objs.append((cls, start, end, r, rgb, shape_rng_seed, kinds[cls]))
    for t in range(num_frames):
        img = background.copy()
        a = t / max(num_frames - 1, 1)
        for k, (cls, start, end, r, rgb, s, kind) in enumerate(objs):
            cx, cy = (1 - a) * start + a * end
            pts = _thing_polygon(np.random.default_rng(s), kind, cx, cy, r)
            mask = np.zeros((h, w), np.uint8)
            cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, shift=4)
            mask = mask.astype(bool)
            img[mask] = rgb
            semantic[t][mask] = cls
            instance[t][mask] = k + 1
        img += rng.normal(0, 4, size=img.shape)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
    labels = {k + 1: o[0] for k, o in enumerate(objs)}
    return dict(frames=frames, semantic=semantic, instance=instance, labels=labels,
                classes=var.classes)


def convoy_clip(seed=0, num_frames=10, size=96, pairs=2, step=(0.5, 0.56), gap=(0.1, 0.3),
                radius=(0.07, 0.08)):
    """A clip where greedy and Hungarian linking differ: ``pairs`` pairs of identical discs
    (class ``DISC``, one colour) ride a carousel, the second disc of a pair close behind the
    first, like parcels on a conveyor filmed at a low frame rate.

    Each frame a disc moves ``step`` (a fraction drawn per pair) of the centre spacing of its
    pair, i.e. a bit more than half of it; so the last mask of the leading disc overlaps the
    follower's new mask more than its own new mask. The best single pair is then wrong (greedy
    takes it), while the best total over both discs (Hungarian) is right, as long as the step
    stays below about 0.6 of the spacing.

    Args:
        seed: int or sequence of ints for ``numpy.random.default_rng``.
        num_frames: clip length.
        size: square frame side in pixels.
        pairs: number of pairs, spread evenly around the carousel.
        step: range of the per-frame travel as a fraction of the pair's centre spacing.
        gap: range of the gap between the two discs of a pair, as a fraction of the radius.
        radius: range of the disc radius as a fraction of ``size``.

    Returns:
        dict like ``make_clip``: ``frames`` (T, H, W, 3) uint8, ``instance``
        (T, H, W) int32 (0 = background, the same id in every frame), ``labels`` {id: class}.
    """
    rng = np.random.default_rng(seed)
    ring = 0.32 * size
    centre = np.array([size / 2, size / 2]) + rng.uniform(-2, 2, 2)
    th0, direction = rng.uniform(0, 2 * np.pi), rng.choice([-1.0, 1.0])
    discs = []                                          # (start angle, radius, spacing, travel, rank)
    for p in range(pairs):
        r = rng.uniform(*radius) * size
        spacing = (2 + rng.uniform(*gap)) * r
        travel = rng.uniform(*step) * spacing
        discs += [(th0 + 2 * np.pi * p / pairs, r, spacing, travel, k) for k in range(2)]
    instance = np.zeros((num_frames, size, size), np.int32)
    yy, xx = np.mgrid[0:size, 0:size]
    background = np.stack([90 + 40 * yy / size, 110 + 30 * xx / size, 90 + 0 * xx], -1)
    frames = np.empty((num_frames, size, size, 3), np.uint8)
    for t in range(num_frames):
        img = background.copy()
        for i, (th_p, r, spacing, travel, k) in enumerate(discs):
            th = th_p + direction * (travel * t - spacing * k) / ring      # arc length / ring radius
            cx, cy = centre + ring * np.array([np.cos(th), np.sin(th)])
            cv2.circle(instance[t], (int(round(cx * 16)), int(round(cy * 16))), int(round(r * 16)),
                       i + 1, -1, lineType=cv2.LINE_8, shift=4)
        img[instance[t] > 0] = (230, 150, 40)
        frames[t] = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    return dict(frames=frames, instance=instance, labels={i + 1: DISC for i in range(len(discs))})
