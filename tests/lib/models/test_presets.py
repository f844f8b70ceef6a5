"""``common.models.presets``: every model's sizes in one table, and what a knob does."""
import pytest

from common.data import get_variant
from common.models import PRESETS, build_model, list_models, preset_kwargs

SCENES = get_variant("scenes")
FACTS = dict(mask_rcnn=dict(thing_ids=SCENES.thing_ids), solo=dict(thing_ids=SCENES.thing_ids),
             upsnet=dict(thing_ids=SCENES.thing_ids, stuff_ids=SCENES.stuff_ids),
             panoptic_deeplab=dict(thing_ids=SCENES.thing_ids), ginet=dict(classes=SCENES.classes))


@pytest.mark.parametrize("name", list_models())
def test_every_model_builds_at_the_cpu_size(name):
    assert set(PRESETS[name]) == {"cpu", "tiny"}
    model = build_model(name, SCENES.num_classes, preset="cpu", **FACTS.get(name, {}))
    assert model._build_config["kwargs"] == preset_kwargs(name, "cpu", **FACTS.get(name, {}))


def test_knobs_scale_a_preset_other_keywords_replace():
    half = preset_kwargs("mask_rcnn", "cpu", width=8)
    assert (half["width"], half["fpn_channels"], half["fc_channels"], half["mask_channels"]) == (8, 16, 64, 16)
    assert preset_kwargs("mask_rcnn", "cpu", fpn_channels=8)["width"] == 16                  # not a knob
    assert preset_kwargs("solo", "cpu", image_size=64)["scale_ranges"] == ((0, 0.3 * 64), (0.2 * 64, 1e4))
    assert preset_kwargs("panoptic_deeplab", "tiny")["stuff_area"] == 64 ** 2 // 150
    assert preset_kwargs("unet", "cpu", width=8) == dict(width=8)                           # a dict preset
    assert preset_kwargs("unet", "full", width=8) == dict(width=8)                          # no preset
    assert not any("thing_ids" in preset_kwargs(n, p) for n in PRESETS for p in ("cpu", "tiny"))
    with pytest.raises(ValueError, match="preset must be one of"):
        build_model("unet", 2, preset="gpu")
