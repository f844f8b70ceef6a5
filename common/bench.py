"""`make bench`: data generation speed and train / inference throughput of every model.

Run: ``python -m common.bench [--size 96] [--batch 4] [--models fcn8s unet ...]``.
Numbers are images per second on this machine, with the threads ``common`` sets.
"""
from __future__ import annotations

# (build_model name, kwargs at the CPU-course size). Teammates append their models here.
BENCH_MODELS = [
    ("tiny", dict(width=16)),
]
