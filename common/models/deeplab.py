"""The DeepLab series (Day 4): V1, V2, V3 and V3+.

- V1  (ICLR 2015): VGG16 whose pool4/pool5 keep stride 1 and whose block 5 is atrous
  (空洞卷积, rate 2); FC6 becomes an atrous 3x3 conv (LargeFOV, rate 12), FC7 a 1x1 conv,
  FC8 the 1x1 classifier; output stride 8. "MSc": a two-layer MLP (3x3 conv with a
  stride, 1x1 conv, 128 filters each) on the input and on pool1..pool4, whose features are
  concatenated to FC7's before FC8. A fully connected CRF after.
- V2  (TPAMI 2018): ResNet at output stride 8 + ASPP (空洞空间金字塔池化): four atrous 3x3
  convs, rates 6/12/18/24, each straight to class scores, SUMMED (ele_add); multi-scale
  inputs "MSC" (scales 1, 0.75, 0.5 through the same network, max fusion, a loss on each);
  CRF after.
- V3  (2017): multi-grid ResNet (1, 2, 4) at output stride 16 (or 8) + an upgraded ASPP
  (1x1 branch, three atrous 3x3 with BN, image pooling branch), CONCATENATED and projected
  by a 1x1 conv; no CRF; multi-scale + flip at inference.
- V3+ (ECCV 2018): the V3 encoder (with atrous separable convs) on aligned Xception, plus
  a decoder that fuses stride-4 low-level features.

Every model maps (N, 3, H, W) to logits (N, K, H, W) for any H, W. Defaults are the
papers' sizes; ``width`` (and ``depth`` / ``middle_blocks``) make them small for a CPU.
``deeplab_table()`` builds the syllabus's comparison table by inspecting the built modules
and one forward pass (backbone class, the dilations of the Conv2D layers, the ASPP's
branches and fusion, image pooling, decoder, MSc branches, the scales the backbone sees,
the CRF step the model holds, measured output stride); only the multi-scale steps of the
data pipeline and of inference come from a class attribute.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ..crf import DenseCRF
from .backbones.resnet import ResNet
from .backbones.vgg import VGG16
from .backbones.xception import Xception
from .layers import ASPP, ConvBNReLU, SeparableConvBNReLU, count_parameters, resize_to
from .registry import register


def _scale_rates(rates, output_stride, base_stride):
    """Rates are designed for ``base_stride``; a finer output stride needs larger rates
    (rate x base / os) to keep the same field of view in input pixels."""
    return tuple(int(r * base_stride // output_stride) for r in rates)


# ----------------------------------------------------------------------------- V1
def _mlp(in_ch, mid_ch, out_ch=None, kernel_size=3, stride=1, rate=1, dropout=0.5):
    """Conv(k, stride, rate)+ReLU+Drop, Conv1x1+ReLU+Drop (+ Conv1x1 to ``out_ch`` classes
    when given): V1's FC6/FC7 and its MSc feature branches (a plain Sequential, so it slices)."""
    layers = [nn.Conv2D(in_ch, mid_ch, kernel_size, stride=stride,
                        padding=rate * (kernel_size - 1) // 2, dilation=rate), nn.ReLU(), nn.Dropout(dropout),
              nn.Conv2D(mid_ch, mid_ch, 1), nn.ReLU(), nn.Dropout(dropout)]
    if out_ch is not None:
        layers.append(nn.Conv2D(mid_ch, out_ch, 1))
    return nn.Sequential(*layers)


class DeepLabV1(nn.Layer):
    """DeepLab V1 (DeepLab-MSc-LargeFOV by default), as in the paper.

    FC6 (atrous 3x3, rate 12: LargeFOV) and FC7 (1x1) on VGG's pool5 give ``16 * width``
    channels at output stride 8. **MSc**: a two-layer MLP (3x3 conv with ``2 * width``
    filters, whose stride 8/4/2/1/1 brings it to the output stride, then a 1x1 conv with
    ``2 * width`` filters, each + ReLU + dropout) on the input image and on pool1..pool4;
    their five feature maps are **concatenated** to FC7's, and FC8, the 1x1 classifier,
    reads all of them (1024 + 5 x 128 channels at the paper's width 64).

    Args:
        num_classes: K.
        width: VGG's first channel count (64).
        fc6_rate: atrous rate of FC6 (12 with ``fc6_kernel`` 3 is LargeFOV; the paper's
            other setting: 4 with 7).
        fc6_kernel: kernel side of FC6.
        msc: add the multi-scale feature branches.
        dropout: of FC6/FC7 and the MSc branches.
        pretrained: a local paddle.vision vgg16 state dict; its conv layers are loaded (the
            paper also subsampled the 4096-wide FC6/FC7 into its 1024-wide ones; ours start fresh).
    """

    name = "DeepLab V1"
    # multi-scale steps outside the layers (the MSc branches and the CRF are read from the model)
    pipeline_multi_scale = "-"

    def __init__(self, num_classes, width=64, fc6_rate=12, fc6_kernel=3, msc=True, dropout=0.5,
                 pretrained=None):
        super().__init__()
        self.output_stride = 8
        # pools 1-3 stride 2, pools 4-5 stride 1, block 5 at dilation 2: the team's VGG16 option
        self.backbone = VGG16(width, deeplab=True, pretrained=pretrained)
        c5 = self.backbone.channels[-1]
        self.fc = _mlp(c5, 16 * width, None, fc6_kernel, 1, fc6_rate, dropout)      # FC6, FC7
        self.msc = None
        feat_ch = 16 * width
        if msc:
            # the input (stride 1) and pool1..pool4 (strides 2, 4, 8, 8) reach stride 8
            ins = [3] + list(self.backbone.channels[:4])
            strides = [8, 4, 2, 1, 1]
            self.msc = nn.LayerList([_mlp(c, 2 * width, None, 3, s, 1, dropout)
                                     for c, s in zip(ins, strides)])
            feat_ch += len(ins) * 2 * width
        self.classifier = nn.Conv2D(feat_ch, num_classes, 1)                       # FC8
        self.postprocess = DenseCRF()

    def forward(self, x):
        feats = self.backbone(x)            # [pool1, pool2, pool3, pool4, pool5]
        out = self.fc(feats[-1])
        if self.msc is not None:
            out = paddle.concat([out] + [resize_to(branch(f), out.shape[-2:])
                                         for branch, f in zip(self.msc, [x] + feats[:4])], axis=1)
        return resize_to(self.classifier(out), x.shape[-2:])


# ----------------------------------------------------------------------------- V2
class ASPPSum(nn.Layer):
    """V2's ASPP: parallel atrous 3x3 convs to class scores, summed (padding = rate keeps
    the size, so the branches can be added element-wise)."""

    def __init__(self, in_ch, num_classes, rates=(6, 12, 18, 24)):
        super().__init__()
        self.rates = tuple(rates)
        self.branches = nn.LayerList([nn.Conv2D(in_ch, num_classes, 3, padding=r, dilation=r)
                                      for r in rates])

    def forward(self, x):
        return paddle.add_n([b(x) for b in self.branches])


class DeepLabV2(nn.Layer):
    """DeepLab V2: ResNet-101 at output stride 8 + ASPP-L (rates 6/12/18/24, summed), with
    the paper's multi-scale inputs (**MSC**): the same network runs on the image rescaled by
    each of ``msc_scales`` (1, 0.75, 0.5); each score map is resized bilinearly to the
    scale-1 score map and they are fused by the **maximum** at every position. In training
    the model returns ``[fused, score at scale 1, 0.75, 0.5]``, and the loss is the sum of the
    cross-entropies of all four (``SegLoss(aux_weight=1.0)``), as DeepLab's released training
    code does (the paper, Sec. 3.2, fuses by the maximum in training and testing); in eval,
    the fused map.

    Args:
        num_classes: K.
        depth: ResNet depth (101 in the paper).
        width: ResNet's first channel count (64).
        output_stride: 8 (rates as given) or 16 (rates halved).
        rates: ASPP rates at output stride 8.
        msc_scales: input scales, the first being 1 (None or (1,) = a single scale).
        pretrained: a local ImageNet ResNet file (paddle.vision's names load directly).
    """

    name = "DeepLab V2"
    pipeline_multi_scale = "random rescaling 0.5-1.5 (training data)"

    def __init__(self, num_classes, depth=101, width=64, output_stride=8, rates=(6, 12, 18, 24),
                 msc_scales=(1.0, 0.75, 0.5), pretrained=None):
        super().__init__()
        self.output_stride = output_stride
        self.msc_scales = tuple(float(s) for s in (msc_scales or (1.0,)))
        if self.msc_scales[0] != 1.0 or not all(0 < s <= 1 for s in self.msc_scales):
            raise ValueError(f"msc_scales must start with 1.0 and lie in (0, 1], got {msc_scales!r}")
        self.backbone = ResNet(depth, width, output_stride, pretrained=pretrained)
        self.aspp = ASPPSum(self.backbone.channels[-1], num_classes, _scale_rates(rates, output_stride, 8))
        self.postprocess = DenseCRF()

    def forward(self, x):
        scores = []
        for s in self.msc_scales:
            xs = x if s == 1.0 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
            y = self.aspp(self.backbone(xs)[-1])
            scores.append(y if not scores else resize_to(y, scores[0].shape[-2:]))
        if len(scores) == 1:
            return resize_to(scores[0], x.shape[-2:])
        fused = paddle.max(paddle.stack(scores), axis=0)
        if self.training:
            return [resize_to(y, x.shape[-2:]) for y in [fused] + scores]
        return resize_to(fused, x.shape[-2:])


# ----------------------------------------------------------------------------- V3
# V3's ASPP (concat of a 1x1, atrous 3x3s and image pooling, then 1x1) is the shared one in
# layers.py (Panoptic-DeepLab uses it too); ASPPConcat is its name beside V2's ASPPSum.
ASPPConcat = ASPP


class DeepLabV3(nn.Layer):
    """DeepLab V3: multi-grid ResNet-101 (1, 2, 4) + ASPP (1x1, rates 6/12/18, image pooling,
    concat, 1x1) + 1x1 classifier. Output stride 16 (rates 6/12/18) or 8 (12/24/36).

    Args:
        num_classes: K.
        depth: ResNet depth (101 in the paper).
        width: ResNet's first channel count (64).
        output_stride: 16 or 8.
        multi_grid: unit rates of layer4's blocks, times the stage's dilation.
        rates: ASPP rates at output stride 16 (doubled at 8).
        aspp_channels: ASPP width (default ``4 * width``, 256 in the paper).
        pretrained: a local ImageNet ResNet file.
    """

    name = "DeepLab V3"
    # V3 Sec. 4.1 (training data) and 4.3 (inference: Trainer.predict(scales=, flip=))
    pipeline_multi_scale = "random rescaling 0.5-2 (training data); scales + flip (inference)"

    def __init__(self, num_classes, depth=101, width=64, output_stride=16, multi_grid=(1, 2, 4),
                 rates=(6, 12, 18), aspp_channels=None, pretrained=None):
        super().__init__()
        self.output_stride = output_stride
        self.backbone = ResNet(depth, width, output_stride, multi_grid, pretrained=pretrained)
        ch = aspp_channels or 4 * width        # 256 at the paper's width 64
        self.aspp = ASPPConcat(self.backbone.channels[-1], ch, _scale_rates(rates, output_stride, 16))
        self.classifier = nn.Conv2D(ch, num_classes, 1)
        self.postprocess = None

    def forward(self, x):
        return resize_to(self.classifier(self.aspp(self.backbone(x)[-1])), x.shape[-2:])


# ---------------------------------------------------------------------------- V3+
class Decoder(nn.Layer):
    """V3+ decoder: 1x1 conv reduces the stride-4 feature to ``low_ch`` (48) channels, the
    encoder output is upsampled to its size, both are concatenated and refined by two
    separable 3x3 convs, then a 1x1 conv gives class scores (upsampled x4 by the model)."""

    def __init__(self, low_in, enc_ch, num_classes, low_ch=48, ch=256):
        super().__init__()
        self.reduce = ConvBNReLU(low_in, low_ch, 1)
        self.fuse = nn.Sequential(SeparableConvBNReLU(enc_ch + low_ch, ch, 3),
                                  SeparableConvBNReLU(ch, ch, 3))
        self.classifier = nn.Conv2D(ch, num_classes, 1)

    def forward(self, enc, low):
        low = self.reduce(low)
        x = paddle.concat([resize_to(enc, low.shape[-2:]), low], axis=1)
        return self.classifier(self.fuse(x))


class DeepLabV3Plus(nn.Layer):
    """DeepLab V3+: encoder = backbone + ASPP with atrous separable convs; decoder above.

    ``backbone='xception'`` (aligned Xception-65; ``width`` 32, ``middle_blocks`` 16) or
    ``'resnet'`` (``depth`` 101, ``width`` 64, low-level = layer1). Head channels scale with
    width: ASPP/decoder 256 and low-level 48 at the paper's width.

    Args:
        num_classes: K.
        backbone: ``'xception'`` or ``'resnet'``.
        width: the backbone's first channel count (default 32 Xception, 64 ResNet).
        depth: ResNet depth (ResNet only).
        middle_blocks: Xception's middle-flow blocks (16 in Xception-65).
        output_stride: 16 or 8.
        rates: ASPP rates at output stride 16 (doubled at 8).
        pretrained: a local backbone state-dict file.
    """

    name = "DeepLab V3+"
    pipeline_multi_scale = DeepLabV3.pipeline_multi_scale           # V3+ Sec. 4 follows V3

    def __init__(self, num_classes, backbone="xception", width=None, depth=101, middle_blocks=16,
                 output_stride=16, rates=(6, 12, 18), pretrained=None):
        super().__init__()
        self.output_stride = output_stride
        if backbone == "xception":
            width = width or 32
            self.backbone = Xception(width, middle_blocks, output_stride, pretrained=pretrained)
            scale = width / 32
        elif backbone == "resnet":
            width = width or 64
            self.backbone = ResNet(depth, width, output_stride, pretrained=pretrained)
            scale = width / 64
        else:
            raise ValueError(f"backbone must be 'xception' or 'resnet', got {backbone!r}")
        ch, low_ch = max(1, round(256 * scale)), max(1, round(48 * scale))
        chans = self.backbone.channels
        self.aspp = ASPPConcat(chans[-1], ch, _scale_rates(rates, output_stride, 16), separable=True)
        self.decoder = Decoder(chans[0], ch, num_classes, low_ch, ch)
        self.postprocess = None

    def forward(self, x):
        feats = self.backbone(x)
        return resize_to(self.decoder(self.aspp(feats[-1]), feats[0]), x.shape[-2:])


# ------------------------------------------------------------------ registry, table
# build_model name -> class; each class is its own builder ``cls(num_classes, **kwargs)``.
DEEPLAB_MODELS = {"deeplabv1": DeepLabV1, "deeplabv2": DeepLabV2, "deeplabv3": DeepLabV3,
                  "deeplabv3plus": DeepLabV3Plus}
for _name, _cls in DEEPLAB_MODELS.items():
    register(_name)(_cls)

TABLE_COLUMNS = ("network", "backbone", "backbone dilations", "head dilations", "ASPP fusion",
                 "image pooling", "decoder", "MSc", "input scales", "multi-scale (pipeline)",
                 "CRF step", "params (M)", "output stride")
# One more column, each row's entry of the syllabus's table (course notes, section 4.2) beside
# what the model and its paper do: every row has it, the table above does not print it.
NOTES_COLUMN = "notes say / papers say"
# the notes' row: backbone, atrous conv, multi-scale, fully connected CRF (as written)
NOTES_TABLE = {"DeepLab V1": ("VGG-16", "Atrous Block", "Training", "Yes"),
               "DeepLab V2": ("ResNet", "ASPP", "Training", "Yes"),
               "DeepLab V3": ("MG ResNet", "Upgraded ASPP", "Inference", "No"),
               "DeepLab V3+": ("Xception", "ASPP+decoder", "Inference", "No")}
# what each paper does with rescaled images, outside the layers, and where it says so
PAPERS_MULTI_SCALE = {
    "DeepLab V1": ("no rescaled images", "V1 Sec. 4.3"),
    "DeepLab V2": ("random rescaling 0.5-1.5 in training", "V2 Sec. 3.2, 4.1"),
    "DeepLab V3": ("random rescaling 0.5-2.0 in training, scales + flip at inference", "V3 Sec. 4.1, 4.3"),
    "DeepLab V3+": ("random rescaling in training (V3's protocol), scales + flip at inference",
                    "V3+ Sec. 4, Tables 3 and 5"),
}


def _dilations(layer):
    """Sorted set of the dilation rates (> 1) of every Conv2D inside ``layer``."""
    return sorted({c._dilation[0] for c in layer.sublayers(include_self=True)
                   if isinstance(c, nn.Conv2D) and c._dilation[0] > 1})


def _unit_rates(stage):
    """Dilation of each residual unit of a ResNet stage (its first 3x3 conv; a basic block's
    two 3x3 convs share it)."""
    return [next(c._dilation[0] for c in block.sublayers()
                 if isinstance(c, nn.Conv2D) and c._kernel_size[0] == 3)
            for block in stage.children()]


def _backbone_name(backbone):
    """Class name, with the depth of a ResNet and its multi-grid unit rates read from
    layer4's convs. Without multi-grid, layer4's first unit keeps layer3's rate and the
    others share one rate; anything else is multi-grid, reported as rates / first rate
    (2, 4, 8 at output stride 16 -> multi-grid 1, 2, 4)."""
    if isinstance(backbone, VGG16):
        return "VGG-16"
    name = type(backbone).__name__
    if isinstance(backbone, ResNet):
        name += f"-{backbone.depth}"
        prev, rates = _unit_rates(backbone.layer3)[-1], _unit_rates(backbone.layer4)
        if not (rates[0] == prev and len(set(rates[1:])) <= 1):
            name += " multi-grid (" + ", ".join(str(r // rates[0]) for r in rates) + ")"
    return name


def _fusion(aspp):
    """How the ASPP branches are fused, read from the module: its class (sum or concat), the
    number of branches, whether its 3x3 convs are depthwise-separable (groups = channels)."""
    if aspp is None:
        return "none"
    n = len(aspp.branches)
    separable = any(isinstance(c, nn.Conv2D) and c._groups > 1 and c._groups == c._in_channels
                    for c in aspp.sublayers())
    if isinstance(aspp, ASPPSum):
        return f"sum of {n} branches"
    if isinstance(aspp, ASPPConcat):
        return f"concat of {n} branches + 1x1" + (", separable" if separable else "")
    raise TypeError(f"describe: unknown ASPP module {type(aspp).__name__}")


def _scale_str(v):
    return f"{v:g}"


def describe(model, probe=64):
    """One row of the comparison table, read from a built model's modules and one forward
    pass: a hook on the backbone records the size of every image it sees (the input scales
    of V2's MSC) and its feature strides (output stride, decoder's low-level stride).

    Args:
        model: a DeepLab model (``DEEPLAB_MODELS``).
        probe: side of the zero image of the forward pass.
    Returns:
        dict with the keys ``TABLE_COLUMNS``.
    """
    in_backbone = {id(c) for c in model.backbone.sublayers(include_self=True)}
    head = [c for c in model.sublayers() if id(c) not in in_backbone]
    seen = []
    hook = model.backbone.register_forward_post_hook(
        lambda layer, inputs, outputs: seen.append((inputs[0].shape[-1], [f.shape[-1] for f in outputs])))
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros([1, 3, probe, probe]))
    finally:
        hook.remove()
        if was_training:
            model.train()
    (side, sizes), aspp = seen[0], getattr(model, "aspp", None)
    decoder, msc = getattr(model, "decoder", None), getattr(model, "msc", None)
    crf = getattr(model, "postprocess", None)
    fc7 = model.fc[3]._out_channels if msc is not None else 0
    return dict(zip(TABLE_COLUMNS, (
        model.name, _backbone_name(model.backbone),
        ", ".join(map(str, _dilations(model.backbone))) or "-",
        ", ".join(map(str, sorted({c._dilation[0] for c in head if isinstance(c, nn.Conv2D)
                                   and c._dilation[0] > 1}))) or "-",
        _fusion(aspp),
        "yes" if any(isinstance(c, nn.AdaptiveAvgPool2D) for c in head) else "no",
        f"yes (stride {side // sizes[0]})" if isinstance(decoder, Decoder) else "no",
        # MSc: the branches, and whether FC8 reads their features concatenated to FC7's
        f"{len(msc)} branches" + (", concat before FC8" if model.classifier._in_channels > fc7 else "")
        if msc is not None else "no",
        ", ".join(_scale_str(s / probe) for s, _ in seen),
        model.pipeline_multi_scale,
        f"dense CRF ({crf.iters} mean-field iters)" if isinstance(crf, DenseCRF) else "no",
        round(count_parameters(model) / 1e6, 2), side // sizes[-1])))


def notes_vs_papers(row):
    """The ``NOTES_COLUMN`` entry of one table row: the notes' multi-scale cell beside what the
    model (its MSc branches, the scales its backbone sees) and its paper do; and the notes'
    backbone or CRF cell where the model says otherwise.

    Args:
        row: a row of ``describe`` (the ``TABLE_COLUMNS`` keys).
    Returns:
        str, e.g. ``MultiScale "Training": inputs at 1, 0.75, 0.5, max-fused, in training and test;
        random rescaling 0.5-1.5 in training (V2 Sec. 3.2, 4.1)``.
    """
    name = row["network"]
    backbone, _, multi, crf = NOTES_TABLE[name]
    data, where = PAPERS_MULTI_SCALE[name]
    papers = []
    if row["MSc"] != "no":
        papers.append(f"MSc ({row['MSc']}) in training and test")
    if row["input scales"] != "1":
        papers.append(f"inputs at {row['input scales']}, max-fused, in training and test")
    out = f'MultiScale "{multi}": ' + "; ".join(papers + [data]) + f" ({where})"
    family = backbone.split()[-1].split("-")[0]          # VGG, ResNet, Xception ("MG": multi-grid)
    if not row["backbone"].startswith(family) or backbone.startswith("MG ") != ("multi-grid" in row["backbone"]):
        out += f'; backbone "{backbone}": model {row["backbone"]}'
    if (crf == "Yes") != (row["CRF step"] != "no"):
        out += f'; CRF "{crf}": model {row["CRF step"]}'
    return out


def deeplab_table(num_classes=21, kwargs=None):
    """The syllabus's comparison of the four versions, regenerated from the built modules.

    Args:
        num_classes: classes of the models (VOC's 21 by default).
        kwargs: maps a model name to its build kwargs (default: the papers' full sizes).
    Returns:
        a list of dict rows with the keys ``TABLE_COLUMNS`` and ``NOTES_COLUMN``.
    """
    kwargs = kwargs or {}
    rows = [describe(cls(num_classes, **kwargs.get(n, {}))) for n, cls in DEEPLAB_MODELS.items()]
    return [dict(r, **{NOTES_COLUMN: notes_vs_papers(r)}) for r in rows]
