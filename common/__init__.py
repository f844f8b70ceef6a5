"""``common``: the package under the course's notebooks, in two parts.

The library (one idea per module; it never imports ``common.course``):

- ``runtime``: device, threads, seeds, the size budget of FAST / CPU / GPU mode;
- ``labels``: label conventions (void, panoptic encoding, the VOC palette);
- ``data``: synthetic scenes and clips, real datasets (VOC, Cityscapes, COCO, file lists),
  joint transforms, downloads, instance / panoptic targets, word vectors of class names;
- ``ops``: reference operators built by hand in NumPy, checked against Paddle's;
- ``models``: every network by name (``build_model(name, K, preset="full" | "cpu" | "tiny")``),
  backbones and shared layers, ImageNet weights, saving and loading by name;
- ``losses``, ``metrics`` (confusion matrix, mIoU, boundary F, PQ, mask AP), ``crf``;
- ``engine`` (``Trainer``), ``distributed`` (data parallel), ``inference`` (prediction,
  sliding windows, test-time augmentation), ``deploy`` (batch norm folding, export, Paddle
  Inference, ``fast_model``), ``video`` (VOS and VIS), ``viz`` (pictures);
- ``predict``: the command line that segments your own photos.

The course's tools, ``common.course``: the homework checks (``exercises``), the student
release and check-in, the notebooks' widgets and diagrams, the receptive-field tool, the
ablation experiments, the course weights' recipes, the benchmarks, and ``paths`` to the
course checkout.

Importing ``common`` imports no Paddle (a command line's ``--help`` answers at once); it
prepares the process for it (``runtime.prepare_process``): Paddle reads OMP_NUM_THREADS once,
when it is first imported, and otherwise runs its CPU kernels on a single thread, so import
``common`` before ``paddle``.
"""
from common import runtime as _runtime

_runtime.prepare_process()

__version__ = "0.1.0"
