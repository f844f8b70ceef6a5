"""`common.course.bench`: the models it times, the multiply-accumulate counter against counts
worked out by hand, the stand-in losses of the instance/panoptic models, the PaddleSeg aux-head
switch, the engine benchmarks and the command line."""
import numpy as np
import paddle
import paddle.nn as nn
import pytest

from common.course.bench import __main__ as cli
from common.course.bench.engines import bench_cli, bench_engines
from common.course.bench.paddleseg import count_macs, paddleseg_aux
from common.course.bench.steps import training_loss
from common.course.bench.throughput import BENCH_MODELS
from common.models import PRESETS, build_model
from common.models.mask_rcnn import MaskRCNN
from common.models.panoptic_deeplab import PanopticDeepLab
from common.models.solo import SOLO
from common.models.upsnet import UPSNet


def test_every_model_is_timed_at_the_cpu_preset():
    assert [name for name, _ in BENCH_MODELS] == list(PRESETS)
    assert all(kwargs["preset"] == "cpu" for _, kwargs in BENCH_MODELS)


class _Net(nn.Layer):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2D(3, 8, 3, padding=1)                 # 8 x 10 x 10 outputs x 27
        self.group = nn.Conv2D(8, 8, 3, padding=1, groups=4)      # 8 x 10 x 10 outputs x 2*9
        self.up = nn.Conv2DTranspose(8, 4, 2, stride=2)           # 8 x 10 x 10 inputs x 4*2*2
        self.fc = nn.Linear(20, 6)                                # 4 x 20 rows x 6 x 20

    def forward(self, x):
        y = self.up(self.group(self.conv(x)))                     # (1, 4, 20, 20)
        return self.fc(y[0])                                      # (4, 20, 6)


def test_count_macs_by_hand():
    macs = count_macs(_Net(), paddle.randn([1, 3, 10, 10]))
    assert macs == 800 * 27 + 800 * 18 + 800 * 16 + 4 * 20 * 6 * 20


@pytest.mark.parametrize("name", ("mask_rcnn", "upsnet", "solo", "panoptic_deeplab"))
def test_stand_in_losses_live_in_bench(name):
    """The instance/panoptic stand-in losses live in the bench: no model class carries a method
    made for it, and each gives a finite scalar loss whose gradient reaches the backbone."""
    for cls in (MaskRCNN, UPSNet, SOLO, PanopticDeepLab):
        assert not hasattr(cls, "bench_loss"), cls
    kwargs = dict(BENCH_MODELS)[name]
    paddle.seed(0)
    model = build_model(name, 7, **kwargs)
    model.train()
    loss_of = training_loss(model, None)
    x = paddle.randn([2, 3, 64, 64])
    loss = loss_of(x)
    assert loss.size == 1 and np.isfinite(float(loss))
    loss.backward()
    assert model.backbone.conv1.weight.grad is not None


def test_paddleseg_aux_switches_only_paddleseg_flags():
    class Head:
        enable_auxiliary_loss = True

    class PSP:                     # PaddleSeg's PSPNet / GloRe keep the flag on their head
        head = Head()

    class GI:                      # PaddleSeg's GINet keeps it on the model
        aux = True

    class Ours:                    # ours: ``aux`` is a Layer (or None), never a flag
        aux = nn.Identity()
    psp, gi, ours = PSP(), GI(), Ours()
    for m in (psp, gi, ours):
        paddleseg_aux(m, False)
    assert psp.head.enable_auxiliary_loss is False and gi.aux is False
    assert isinstance(ours.aux, nn.Identity)
    paddleseg_aux(gi, True)
    assert gi.aux is True


def test_bench_engines_rows():
    lines = []
    rows = bench_engines([("tiny", dict(preset="tiny"))], sizes=(24,), batches=(2,), repeats=2,
                         steps=1, engines=("dynamic", "inference"), out=lines.append, clock="cpu")
    (row,) = rows
    assert (row["model"], row["size"], row["batch"]) == ("tiny", 24, 2) and row["max_rel_diff"] < 1e-5
    assert all(0 < row[e][0] <= row[e][1] for e in ("dynamic", "inference"))
    assert len(lines) == 1 and "inference" in lines[0]


@pytest.mark.slow          # six whole `python -m common.predict` runs
def test_bench_cli_times_whole_runs():
    lines = []
    (runs,) = bench_cli(("tiny",), repeats=1, num_classes=3, out=lines.append).values()
    assert sorted(runs) == ["dynamic", "inference first run", "inference later runs"]
    assert all(len(v) == 1 and v[0] > 0 for v in runs.values())
    assert len(lines) == 1 and lines[0].startswith("tiny")


def test_command_line_rejects_unknown_names(capsys):
    for argv in (["engines", "--models", "nope"], ["engines", "--engines", "onnx"], ["nope"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
    assert "unknown engines ['onnx']" in capsys.readouterr().err
    assert cli.parse_args(["--size", "64"])[1].command == "models"        # the default command
