"""The DeepLab series (Day 4): V1, V2, V3 and V3+.

- V1  (ICLR 2015): VGG16 whose pool4/pool5 keep stride 1 and whose block 5 is atrous
  (空洞卷积, rate 2); FC6 becomes an atrous 3x3 conv (LargeFOV, rate 12), FC7 a 1x1 conv,
  FC8 the 1x1 classifier; output stride 8; multi-scale "MSc" heads (conv(stride)+ReLU+Drop,
  1x1+ReLU+Drop, 1x1 to classes) on the input and pool1..pool4; fully connected CRF after.
- V2  (TPAMI 2018): ResNet at output stride 8 + ASPP (空洞空间金字塔池化): four atrous 3x3
  convs, rates 6/12/18/24, each straight to class scores, SUMMED (ele_add); CRF after;
  multi-scale inputs in training.
- V3  (2017): multi-grid ResNet (1, 2, 4) at output stride 16 (or 8) + an upgraded ASPP
  (1x1 branch, three atrous 3x3 with BN, image pooling branch), CONCATENATED and projected
  by a 1x1 conv; no CRF; multi-scale + flip at inference.
- V3+ (ECCV 2018): the V3 encoder (with atrous separable convs) on aligned Xception, plus
  a decoder that fuses stride-4 low-level features.

Every model maps (N, 3, H, W) to logits (N, K, H, W) for any H, W. Defaults are the
papers' sizes; ``width`` (and ``depth`` / ``middle_blocks``) make them small for a CPU.
Each class carries the attributes of the syllabus's comparison table, and
``deeplab_table()`` builds that table from the code.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn

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
def _head(in_ch, mid_ch, num_classes, kernel_size=3, stride=1, rate=1, dropout=0.5):
    """Conv(k, stride, rate)+ReLU+Drop, Conv1x1+ReLU+Drop, Conv1x1(classes): the classifier
    of V1 (FC6/FC7/FC8) and of its multi-scale heads (a plain Sequential, so it slices)."""
    return nn.Sequential(
        nn.Conv2D(in_ch, mid_ch, kernel_size, stride=stride, padding=rate * (kernel_size - 1) // 2,
                  dilation=rate), nn.ReLU(), nn.Dropout(dropout),
        nn.Conv2D(mid_ch, mid_ch, 1), nn.ReLU(), nn.Dropout(dropout),
        nn.Conv2D(mid_ch, num_classes, 1))


class DeepLabV1(nn.Layer):
    """DeepLab V1 (DeepLab-MSc-LargeFOV by default).

    ``pretrained``: a local paddle.vision vgg16 state dict; its conv layers are loaded (the
    paper also subsampled the 4096-wide FC6/FC7 into its 1024-wide ones; ours start fresh).
    Args: ``width`` VGG's first channel count (64; FC6/FC7 have 16x, the MSc heads 2x);
    ``fc6_rate`` 12 with ``fc6_kernel`` 3 is LargeFOV (the paper's other setting: 4 with 7);
    ``msc`` adds the multi-scale heads whose class scores are summed with FC8's.
    """

    name = "DeepLab V1"
    backbone_name = "VGG-16"
    atrous = "atrous block 5 + atrous FC6"
    aspp_fusion = "none (single FC6 branch)"
    multi_scale = "training (MSc heads on input and pool1-4)"
    crf = True

    def __init__(self, num_classes, width=64, fc6_rate=12, fc6_kernel=3, msc=True, dropout=0.5,
                 pretrained=None):
        super().__init__()
        self.output_stride = 8
        # pools 1-3 stride 2, pools 4-5 stride 1, block 5 at dilation 2: the team's VGG16 option
        self.backbone = VGG16(width, deeplab=True, pretrained=pretrained)
        c5 = self.backbone.channels[-1]
        self.classifier = _head(c5, 16 * width, num_classes, fc6_kernel, 1, fc6_rate, dropout)
        self.msc = None
        if msc:
            # the input (stride 1) and pool1..pool4 (strides 2, 4, 8, 8) reach stride 8
            ins = [3] + list(self.backbone.channels[:4])
            strides = [8, 4, 2, 1, 1]
            self.msc = nn.LayerList([_head(c, 2 * width, num_classes, 3, s, 1, dropout)
                                     for c, s in zip(ins, strides)])

    def forward(self, x):
        feats = self.backbone(x)            # [pool1, pool2, pool3, pool4, pool5]
        out = self.classifier(feats[-1])
        if self.msc is not None:
            for head, f in zip(self.msc, [x] + feats[:4]):
                out = out + resize_to(head(f), out.shape[-2:])
        return resize_to(out, x.shape[-2:])


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
    """DeepLab V2: ResNet-101 at output stride 8 + ASPP-L (rates 6/12/18/24, summed).

    Rates are for output stride 8 and halve at 16. ``width``/``depth`` go to ResNet;
    ``pretrained`` is a local ImageNet ResNet file (paddle.vision's names load directly).
    """

    name = "DeepLab V2"
    backbone_name = "ResNet"
    atrous = "atrous layer3/4 + ASPP"
    aspp_fusion = "sum (4 atrous branches)"
    multi_scale = "training (random input scales)"
    crf = True

    def __init__(self, num_classes, depth=101, width=64, output_stride=8, rates=(6, 12, 18, 24),
                 pretrained=None):
        super().__init__()
        self.output_stride = output_stride
        self.backbone = ResNet(depth, width, output_stride, pretrained=pretrained)
        self.aspp = ASPPSum(self.backbone.channels[-1], num_classes, _scale_rates(rates, output_stride, 8))

    def forward(self, x):
        return resize_to(self.aspp(self.backbone(x)[-1]), x.shape[-2:])


# ----------------------------------------------------------------------------- V3
# V3's ASPP (concat of a 1x1, atrous 3x3s and image pooling, then 1x1) is the shared one in
# layers.py (Panoptic-DeepLab uses it too); ASPPConcat is its name beside V2's ASPPSum.
ASPPConcat = ASPP


class DeepLabV3(nn.Layer):
    """DeepLab V3: multi-grid ResNet-101 (1, 2, 4) + ASPP (1x1, rates 6/12/18, image pooling,
    concat, 1x1) + 1x1 classifier. Output stride 16 (rates 6/12/18) or 8 (12/24/36)."""

    name = "DeepLab V3"
    backbone_name = "multi-grid ResNet"
    atrous = "multi-grid layer4 + upgraded ASPP"
    aspp_fusion = "concat (1x1, 3 atrous, image pool) + 1x1"
    multi_scale = "inference (scales + flip)"
    crf = False

    def __init__(self, num_classes, depth=101, width=64, output_stride=16, multi_grid=(1, 2, 4),
                 rates=(6, 12, 18), aspp_channels=None, pretrained=None):
        super().__init__()
        self.output_stride = output_stride
        self.backbone = ResNet(depth, width, output_stride, multi_grid, pretrained=pretrained)
        ch = aspp_channels or 4 * width        # 256 at the paper's width 64
        self.aspp = ASPPConcat(self.backbone.channels[-1], ch, _scale_rates(rates, output_stride, 16))
        self.classifier = nn.Conv2D(ch, num_classes, 1)

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
    """

    name = "DeepLab V3+"
    backbone_name = "aligned Xception"
    atrous = "atrous separable ASPP + decoder"
    aspp_fusion = "concat (1x1, 3 atrous sep., image pool) + 1x1"
    multi_scale = "inference (scales + flip)"
    crf = False

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
            self.backbone_name = "ResNet"
        else:
            raise ValueError(f"backbone must be 'xception' or 'resnet', got {backbone!r}")
        ch, low_ch = max(1, round(256 * scale)), max(1, round(48 * scale))
        chans = self.backbone.channels
        self.aspp = ASPPConcat(chans[-1], ch, _scale_rates(rates, output_stride, 16), separable=True)
        self.decoder = Decoder(chans[0], ch, num_classes, low_ch, ch)

    def forward(self, x):
        feats = self.backbone(x)
        return resize_to(self.decoder(self.aspp(feats[-1]), feats[0]), x.shape[-2:])


# ------------------------------------------------------------------ registry, table
# build_model name -> class; each class is its own builder ``cls(num_classes, **kwargs)``.
DEEPLAB_MODELS = {"deeplabv1": DeepLabV1, "deeplabv2": DeepLabV2, "deeplabv3": DeepLabV3,
                  "deeplabv3plus": DeepLabV3Plus}
for _name, _cls in DEEPLAB_MODELS.items():
    register(_name)(_cls)

TABLE_COLUMNS = ("network", "backbone", "atrous conv", "ASPP fusion", "multi-scale",
                 "CRF", "params (M)", "output stride")


def describe(model):
    """One row of the comparison table, read from a built model."""
    return dict(zip(TABLE_COLUMNS, (
        model.name, model.backbone_name, model.atrous, model.aspp_fusion, model.multi_scale,
        "yes" if model.crf else "no", round(count_parameters(model) / 1e6, 2), model.output_stride)))


def deeplab_table(num_classes=21, kwargs=None):
    """The syllabus's comparison of the four versions, regenerated from the code.

    ``kwargs`` maps a model name to its build kwargs (default: the papers' full sizes,
    VOC's 21 classes). Returns a list of dict rows with the keys ``TABLE_COLUMNS``.
    """
    kwargs = kwargs or {}
    return [describe(cls(num_classes, **kwargs.get(n, {}))) for n, cls in DEEPLAB_MODELS.items()]

