"""Course weights: models trained once, longer than a live notebook can.

In a live notebook's CPU budget (100-400 steps) the course's semantic models learn the four
stuff classes and *find* the objects, but do not yet tell disc, square and triangle apart: only
the outline separates them (their hue is random), and that takes a longer schedule. The class
weights below address the rarity of the objects (discs and squares 4 % of the pixels each,
triangles 1.9 %). Each recipe in ``RECIPES`` is trained by one committed command,

    python -m common.course.weights NAME [NAME ...]      # e.g. fcn8s, unet, deeplabv3plus; none: all

which writes ``weights/<day>/<NAME>.pdparams`` (float16) and ``<NAME>.json`` beside it: the
command, the code version (git sha), the seed, the recipe, the training seconds and the scores
of the float16 weights on two held-out splits: ``val`` (32 scenes the recipes were chosen on)
and ``test`` (256 other scenes, which no recipe decision used: what the course reports and
asserts). ``load(NAME)`` rebuilds the model and loads them as float32. Day 6's models have
recipes too: Panoptic-DeepLab (``task="panoptic"``: its own targets and loss, scored by PQ as
well) and Mask R-CNN, SOLO and UPSNet (``task="instance"``: the model returns its losses, scored
by mask AP, and UPSNet by PQ as well). The notebooks still train live for the lesson about
training, then load these to show what the architecture reaches. (They train with the engine, so
they live here and not in ``common.models``: models do not import the engine.)

The names live in ``recipes``, loaded on first use, so that ``python -m common.course.weights
--help`` answers without loading Paddle.
"""
_NAMES = ("RECIPES", "TARGET", "SPLITS", "CLASS_WEIGHTS", "SCENES", "misses_target", "command", "splits",
          "held_out", "train", "per_class_iou", "panoptic_scores", "instance_scores", "instance_table", "scores",
          "held_out_record", "save", "load", "rescore", "main")


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import recipes  # Paddle (seconds to import): `python -m common.course.weights --help` needs none

    return getattr(recipes, name)


def __dir__():
    return sorted(_NAMES)
