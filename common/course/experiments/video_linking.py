"""Greedy vs Hungarian linking of per-frame instances (Day 6 · 05, VIS).

One thing changes: the assignment between live tracks and a frame's detections, ``greedy``
(best IoU pair first) or ``hungarian`` (``scipy.optimize.linear_sum_assignment``, the best
total IoU), inside the same linker (``common.video.link_instances``) on the same detections.

Two kinds of clips, ``clips`` of each per seed (the seed draws the clips and the detection
noise):

- ``convoy``: ``common.data.convoy_clip``, pairs of identical discs following each other
  closely, each moving a bit more than half its pair's spacing per frame: the best single
  pair is the wrong one, so greedy and Hungarian must differ;
- ``crossing``: the course's clips (``common.data.make_clip``), three objects crossing once,
  where the best pair is nearly always also part of the best total (so they should tie).

Each kind is linked without the motion model (the assignment alone decides) and with it (the
course's default: each track's mask moved by its velocity). Metric: identity switches per clip
(``common.video.id_switches``), averaged over the clips.
"""
from __future__ import annotations

import numpy as np

from common.data import convoy_clip, make_clip
from common.video import id_switches, link_instances, noisy_instances

from . import run

NAME = "video_linking"
METHODS = ("greedy", "hungarian")


def clip_switches(method, seed, clips=20, num_frames=10):
    """ID switches per clip of ``method`` on ``clips`` convoy and crossing clips of ``seed``.

    Args:
        method: 'greedy' or 'hungarian'.
        seed: draws the clips and the detection noise.
        clips: clips of each kind.
        num_frames: frames per clip.

    Returns:
        dict ``convoy``, ``convoy_motion``, ``crossing``, ``crossing_motion``: mean ID switches
        per clip (``_motion``: the linker's motion model on).
    """
    out = {k: [] for k in ("convoy", "convoy_motion", "crossing", "crossing_motion")}
    for i in range(clips):
        for kind, clip in (("convoy", convoy_clip([seed, i], num_frames)),
                           ("crossing", make_clip(seed * 1000 + i, num_frames, 64, num_things=3))):
            det = noisy_instances(clip["instance"], clip["labels"], seed=[seed, i], jitter=1)
            for motion, key in ((False, kind), (True, kind + "_motion")):
                ids = link_instances(det, method=method, motion=motion)
                out[key].append(id_switches(det, ids, clip["instance"])[0])
    return {k: float(np.mean(v)) for k, v in out.items()}


def main(fast=False, out_dir=None):
    """Run the experiment (3 seeds); FAST: 3 clips of 6 frames per kind and seed."""
    clips, frames = (3, 6) if fast else (20, 10)
    variants = {m: (lambda seed, m=m: clip_switches(m, seed, clips, frames)) for m in METHODS}
    return run(NAME, variants, seeds=(0, 1, 2), fast=fast, out_dir=out_dir,
               meta=dict(clips_per_kind=clips, frames=frames, convoy="convoy_clip(seed, frames), 96 px, 2 pairs",
                         crossing="make_clip(seed*1000+i, frames, 64, num_things=3)",
                         detections="noisy_instances(jitter=1)", metric="ID switches per clip"))
