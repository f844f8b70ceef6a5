"""The output contract of ``common.models`` (its module docstring), for every registered model.

Every name of ``list_models()`` is built small and run once in eval and once in train mode
on an odd-sized batch (67 x 53): the types, shapes and dtypes of what comes back are the
ones the docstring states. A new model fails ``test_every_model_is_covered`` until it is
given presets (``common.models.presets``) and a family here.
"""
import numpy as np
import paddle
import pytest

from common.data import get_variant
from common.data.instances import SceneInstances, targets_to_tensors
from common.engine import total_loss
from common.labels import LABEL_DIVISOR, PANOPTIC_VOID
from common.models import PRESETS, build_model, list_models, panoptic_deeplab

K = 7                                   # the 'scenes' variant: 4 stuff + 3 thing classes
VAR = get_variant("scenes")
THINGS, STUFF = VAR.thing_ids, VAR.stuff_ids
H, W = 67, 53                           # odd, and not a multiple of any output stride
N = 2

# The dataset's facts (the scenes' things and stuff, the class names of GINet's word vectors)
# beside the tests' size, the "tiny" preset; score_thresh 0: untrained heads still return
# detections whose labels can be checked.
_DATASET = dict(panoptic_deeplab=dict(thing_ids=THINGS), ginet=dict(classes=VAR.classes),
                mask_rcnn=dict(thing_ids=THINGS, score_thresh=0.0),
                upsnet=dict(thing_ids=THINGS, stuff_ids=STUFF, score_thresh=0.0),
                solo=dict(thing_ids=THINGS, score_thresh=0.0, update_thresh=0.0))


def tiny(name):
    """``build_model`` keywords of ``name`` at the tests' size, for the scenes' 7 classes."""
    return dict(preset="tiny", **_DATASET.get(name, {}))


# Train-mode outputs as the docstring states them: a list [main, aux, ...] for these, with
# its length; the other semantic models return the logits tensor alone.
TRAIN_LIST = dict(pspnet=2, context_baseline=2, gcu=2, glore=2, ginet=2, deeplabv2=4)
SEMANTIC = ["tiny", "fcn8s", "fcn16s", "fcn32s", "unet", "pspnet", "deeplabv1", "deeplabv2",
            "deeplabv3", "deeplabv3plus", "context_baseline", "gcu", "glore", "ginet"]
INSTANCE = ["mask_rcnn", "upsnet", "solo"]


def _images(h=H, w=W):
    return paddle.to_tensor(np.random.default_rng(0).normal(size=(N, 3, h, w)).astype(np.float32))


def _logits(t, name):
    assert isinstance(t, paddle.Tensor), f"{name}: expected a logits tensor, got {type(t).__name__}"
    assert t.dtype == paddle.float32, f"{name}: logits dtype {t.dtype}"
    assert tuple(t.shape) == (N, K, H, W), f"{name}: logits shape {tuple(t.shape)}, want {(N, K, H, W)}"


def test_every_model_is_covered():
    assert sorted(PRESETS) == list_models(), "give a new model presets and a family here"
    assert sorted(SEMANTIC + INSTANCE + ["panoptic_deeplab"]) == list_models()


@pytest.mark.parametrize("name", SEMANTIC)
def test_semantic_model_contract(name):
    model = build_model(name, K, **tiny(name))
    x = _images()
    model.eval()
    with paddle.no_grad():
        _logits(model(x), f"{name} eval")
    model.train()
    out = model(x)
    if name in TRAIN_LIST:
        assert isinstance(out, list) and len(out) == TRAIN_LIST[name], \
            f"{name} train: want a list of {TRAIN_LIST[name]}, got {type(out).__name__}"
        for i, t in enumerate(out):
            _logits(t, f"{name} train[{i}]")
    else:
        _logits(out, f"{name} train")


def test_sc_loss_appends_class_logits():
    """GINet with sc_loss: [main, aux, class-node logits (N, M)], M = one node per class."""
    model = build_model("ginet", K, sc_loss=True, **tiny("ginet"))
    model.train()
    out = model(_images())
    assert isinstance(out, list) and len(out) == 3
    _logits(out[0], "ginet main")
    _logits(out[1], "ginet aux")
    assert tuple(out[2].shape) == (N, K)


def test_panoptic_deeplab_contract():
    model = build_model("panoptic_deeplab", K, **tiny("panoptic_deeplab"))
    x = _images()
    want = dict(semantic=(N, K, H, W), center=(N, 1, H, W), offset=(N, 2, H, W))
    for train in (False, True):
        model.train() if train else model.eval()
        with paddle.set_grad_enabled(train):
            out = model(x)
        assert isinstance(out, dict) and {k: tuple(v.shape) for k, v in out.items()} == want, \
            f"train={train}: {type(out).__name__}"
    pan = np.full((N, H, W), 1 * LABEL_DIVISOR, np.int64)          # stuff (grass) ...
    pan[:, 10:30, 10:25] = THINGS[0] * LABEL_DIVISOR + 1              # ... one thing ...
    pan[:, -5:] = PANOPTIC_VOID                                       # ... and a void strip
    loss = panoptic_deeplab.PanopticDeepLabLoss(THINGS)(out, pan)
    assert loss.shape == [] and np.isfinite(float(loss))
    maps = model.panoptic(x)
    assert maps.shape == (N, H, W) and maps.dtype == np.int64
    cats = np.unique(maps[maps != PANOPTIC_VOID] // LABEL_DIVISOR)
    assert set(cats.tolist()) <= set(range(K)), cats


def _instance_batch():
    data = SceneInstances(N, (H, W), seed=0)
    x = paddle.to_tensor(np.stack([data[i][0] for i in range(N)]))
    return x, targets_to_tensors([data[i][1] for i in range(N)])


@pytest.mark.parametrize("name", INSTANCE)
def test_instance_model_contract(name):
    model = build_model(name, K, **tiny(name))
    x, targets = _instance_batch()
    assert tuple(x.shape) == (N, 3, H, W)
    model.train()
    losses = model(x, targets)
    assert isinstance(losses, dict) and losses, f"{name} train: {type(losses).__name__}"
    for k, v in losses.items():
        assert isinstance(v, paddle.Tensor) and v.shape == [] and np.isfinite(float(v)), (k, v)
    assert np.isfinite(float(total_loss(losses)))

    model.eval()
    with paddle.no_grad():
        preds = model(x)
    assert isinstance(preds, list) and len(preds) == N
    keys = {"labels", "scores", "masks"} | ({"boxes"} if name != "solo" else set()) \
        | ({"semantic", "panoptic"} if name == "upsnet" else set())
    found = 0
    for p in preds:
        assert set(p) == keys, f"{name} eval keys {sorted(p)}"
        n = len(p["labels"])
        found += n
        assert p["labels"].dtype == np.int64 and p["labels"].shape == (n,)
        assert p["scores"].dtype == np.float32 and p["scores"].shape == (n,)
        assert p["masks"].dtype == bool and p["masks"].shape == (n, H, W)
        # num_classes counts every class; labels are dataset class ids of the things
        assert set(p["labels"].tolist()) <= set(THINGS), f"{name} labels {np.unique(p['labels'])}"
        if "boxes" in p:
            assert p["boxes"].dtype == np.float32 and p["boxes"].shape == (n, 4)
        if name == "upsnet":
            assert p["semantic"].shape == (H, W) and p["semantic"].dtype == np.int64
            assert set(np.unique(p["semantic"]).tolist()) <= set(range(K))
            assert p["panoptic"].shape == (H, W) and p["panoptic"].dtype == np.int64
            cats = set((np.unique(p["panoptic"]) // LABEL_DIVISOR).tolist())
            assert cats <= set(STUFF) | set(THINGS) | {255}, cats
    assert found, f"{name}: no detection at score_thresh 0, the label check saw nothing"
