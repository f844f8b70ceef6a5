"""Block diagrams drawn from a model's own layers, so a picture cannot drift from the code.

A diagram is a small spec: named blocks, each a sublayer path of the model (its output, or
its input with a trailing ``<``; ``#k`` its k-th call, for a layer that runs more than once,
such as DeepLab V2's backbone on three scales; ``@i`` picks item ``i`` of a list output), and
the data flow between them as ``"a>b>c; b>d"``. ``trace`` runs the model once on a random image with
forward hooks on those sublayers and records the shapes; ``draw`` places each block at its
depth along the flow (x) and at its resolution level (y = -log2 of its stride, so a U-Net
looks like a U), with its shape written in. A renamed or removed layer raises a KeyError
that names it, so the test of every spec fails when the model changes under a diagram.
"""
import math

import numpy as np
import paddle

from common.data import get_variant
from common.models import build_model


def _parse(flow):
    edges = []
    for chain in flow.split(";"):
        names = [n.strip() for n in chain.split(">") if n.strip()]
        edges += list(zip(names, names[1:]))
    return edges


def trace(model, blocks, x, run=None):
    """Shapes of the named blocks for one forward pass.

    Args:
        model: a ``paddle.nn.Layer`` (put in eval mode here, restored after).
        blocks: {key: path}; path is ``"input"``, ``"output"``, a sublayer name as in
            ``model.named_sublayers()`` (its output), with ``"<"`` appended for its input,
            ``"#k"`` for its k-th call (0 = the first, the default) and ``"@i"`` to pick item
            ``i`` of a list/tuple.
        x: the input tensor (N, 3, H, W).
        run: optional ``run(model, x)`` replacing ``model(x)``.
    Returns:
        {key: shape list} (batch dimension dropped).
    """
    layers = dict(model.named_sublayers())
    shapes, hooks, wanted = {}, [], {}
    for key, path in blocks.items():
        base, _, item = path.partition("@")
        base, _, call = base.partition("#")
        want_input = base.endswith("<")
        base = base.rstrip("<")
        if base not in ("input", "output") and base not in layers:
            raise KeyError(f"diagram block {key!r}: the model has no layer {base!r}")
        wanted.setdefault(base, []).append((key, want_input, int(item) if item else None, int(call or 0)))
    calls = {base: 0 for base in wanted}          # calls of each layer so far

    def record(base, tensors, is_input):
        for key, want_input, item, call in wanted[base]:
            if want_input == is_input and call == calls[base] and key not in shapes:
                t = tensors[item] if item is not None else tensors
                while isinstance(t, (list, tuple)):          # e.g. the RPN's (objectness, deltas) per level
                    t = t[0]
                shapes[key] = list(t.shape[1:])

    def after(base, out):
        record(base, out, False)
        calls[base] += 1

    for base in wanted:
        if base in ("input", "output"):
            continue
        layer = layers[base]
        hooks.append(layer.register_forward_pre_hook(
            lambda lyr, inp, b=base: record(b, inp if len(inp) > 1 else inp[0], True)))
        hooks.append(layer.register_forward_post_hook(
            lambda lyr, inp, out, b=base: after(b, out)))
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            out = run(model, x) if run else model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if "input" in wanted:
        record("input", x, False)
    if "output" in wanted:
        record("output", out, False)
    missing = [k for k in blocks if k not in shapes]
    if missing:
        raise KeyError(f"diagram blocks never ran in the forward pass: {missing}")
    return shapes


# name -> (build_model name, kwargs, blocks {key: (label, path)}, flow)
ARCHITECTURES = {
    "fcn8s": ("fcn8s", dict(width=8), {
        "x": ("image", "input"), "p3": ("conv1-3, pool3", "backbone.pool3"), "p4": ("pool4", "backbone.pool4"),
        "fc7": ("fc6-fc7 (conv)", "backbone.fc7"), "s32": ("score_fr", "score_fr"),
        "s16": ("up x2 + score_pool4", "up2_fr"), "s8": ("up x2 + score_pool3", "up2_pool4"),
        "out": ("up x8: scores", "output")},
        "x>p3>p4>fc7>s32>s16>s8>out; p4>s16; p3>s8"),
    "unet": ("unet", dict(width=8), {
        "x": ("image", "input"), "e0": ("inc", "inc"), "e1": ("down 1", "downs.0"), "e2": ("down 2", "downs.1"),
        "e3": ("down 3", "downs.2"), "e4": ("down 4 (bottom)", "downs.3"), "d3": ("up 1", "ups.0"),
        "d2": ("up 2", "ups.1"), "d1": ("up 3", "ups.2"), "d0": ("up 4", "ups.3"), "out": ("1x1: scores", "output")},
        "x>e0>e1>e2>e3>e4>d3>d2>d1>d0>out; e3>d3; e2>d2; e1>d1; e0>d0"),
    "pspnet": ("pspnet", dict(depth=18, width=8), {
        "x": ("image", "input"), "c2": ("layer1", "backbone.layer1"), "c3": ("layer2", "backbone.layer2"),
        "c4": ("layer3 (dilated)", "backbone.layer3"), "c5": ("layer4 (dilated)", "backbone.layer4"),
        "psp": ("pyramid pooling: concat", "psp"), "head": ("head", "head"), "out": ("up x8: scores", "output")},
        "x>c2>c3>c4>c5>psp>head>out"),
    "deeplabv3plus": ("deeplabv3plus", dict(width=8, middle_blocks=1), {
        "x": ("image", "input"), "low": ("entry flow (low level)", "backbone@0"), "c5": ("exit flow", "backbone@-1"),
        "aspp": ("ASPP + image pooling", "aspp"), "red": ("1x1 reduce", "decoder.reduce"),
        "fuse": ("decoder: concat + sep. conv", "decoder.fuse"), "cls": ("1x1 classifier", "decoder.classifier"),
        "out": ("up x4: scores", "output")},
        "x>low>c5>aspp>fuse>cls>out; low>red>fuse"),
    "deeplabv1": ("deeplabv1", dict(width=8), {
        "x": ("image", "input"), "p1": ("pool1", "backbone@0"), "p2": ("pool2", "backbone@1"),
        "p3": ("pool3", "backbone@2"), "p4": ("pool4 (stride 1)", "backbone@3"),
        "p5": ("block 5 atrous, pool5", "backbone@4"), "fc6": ("FC6 atrous 3x3, rate 12", "fc.0"),
        "fc7": ("FC7 1x1", "fc.3"), "m0": ("MSc on image", "msc.0"), "m1": ("MSc on pool1", "msc.1"),
        "m2": ("MSc on pool2", "msc.2"), "m3": ("MSc on pool3", "msc.3"), "m4": ("MSc on pool4", "msc.4"),
        "cat": ("concat FC7 + 5 MSc", "classifier<"), "fc8": ("FC8 1x1: scores", "classifier"),
        "out": ("up x8", "output")},
        "x>p1>p2>p3>p4>p5>fc6>fc7>cat>fc8>out; x>m0>cat; p1>m1>cat; p2>m2>cat; p3>m3>cat; p4>m4>cat"),
    "deeplabv2": ("deeplabv2", dict(depth=18, width=8, msc_scales=None), {
        "x": ("image", "input"), "c2": ("ResNet layer1", "backbone.layer1"), "c3": ("layer2", "backbone.layer2"),
        "c4": ("layer3 (dilated)", "backbone.layer3"), "c5": ("layer4 (dilated)", "backbone.layer4"),
        "a6": ("3x3 rate 6: scores", "aspp.branches.0"), "a12": ("3x3 rate 12", "aspp.branches.1"),
        "a18": ("3x3 rate 18", "aspp.branches.2"), "a24": ("3x3 rate 24", "aspp.branches.3"),
        "sum": ("ASPP: sum", "aspp"), "out": ("up x8", "output")},
        "x>c2>c3>c4>c5>a6>sum>out; c5>a12>sum; c5>a18>sum; c5>a24>sum"),
    "deeplabv2_msc": ("deeplabv2", dict(depth=18, width=8), {
        "x": ("image", "input"), "x1": ("scale 1", "backbone<#0"), "x75": ("scale 0.75", "backbone<#1"),
        "x50": ("scale 0.5", "backbone<#2"), "c1": ("ResNet layer4", "backbone.layer4#0"),
        "c75": ("same ResNet", "backbone.layer4#1"), "c50": ("same ResNet", "backbone.layer4#2"),
        "s1": ("ASPP (sum): scores", "aspp#0"), "s75": ("same ASPP", "aspp#1"), "s50": ("same ASPP", "aspp#2"),
        "out": ("max over scales, up x8", "output")},
        "x>x1>c1>s1>out; x>x75>c75>s75>out; x>x50>c50>s50>out"),
    "glore_unit": ("glore", dict(depth=18, width=8, mid=32), {
        "x": ("unit input X", "unit<"), "phi": ("states phi(X)", "unit.state"), "b": ("projection B", "unit.proj"),
        "v": ("nodes V = B phi", "unit.gcn<"), "z": ("graph conv Z", "unit.gcn"),
        "ext": ("B^T Z, 1x1 conv", "unit.extend"), "y": ("X + BN(...)", "unit")},
        "x>phi>v>z>ext>y; x>b>v; x>y"),
    "panoptic_deeplab": ("panoptic_deeplab", dict(width=8, channels=32, thing_ids=(3, 4, 5)), {
        "x": ("image", "input"), "c2": ("ResNet c2", "backbone.layer1"), "c3": ("ResNet c3", "backbone.layer2"),
        "c5": ("ResNet c5", "backbone.layer4"),
        "sem": ("semantic decoder", "semantic_decoder"), "ins": ("instance decoder", "instance_decoder"),
        "seg": ("semantic head", "semantic_head"), "ctr": ("centre head", "center_head"),
        "off": ("offset head", "offset_head")},
        "x>c2>c3>c5>sem>seg; c5>ins>ctr; ins>off; c2>sem; c3>sem; c2>ins; c3>ins"),
    "mask_rcnn": ("mask_rcnn", dict(thing_ids=(3, 4, 5), preset="cpu", width=8), {
        "x": ("image", "input"), "c2": ("ResNet c2", "backbone.layer1"), "c5": ("ResNet c5", "backbone.layer4"),
        "p5": ("FPN P5", "fpn@3"), "p2": ("FPN P2 (top-down sum)", "fpn@0"),
        "rpn": ("RPN: objectness of all anchors", "rpn"), "roi": ("RoIAlign, per RoI", "box_head<"),
        "box": ("box head: K+1 scores", "box_head"), "mroi": ("RoIAlign, per detection", "mask_head<"),
        "mask": ("mask head: K masks", "mask_head")},
        "x>c2>c5>p5>p2>rpn>roi>box>mroi>mask; c2>p2; p2>roi; p2>mroi"),
    "gcu_block": ("gcu", dict(depth=18, width=8, mid=32), {
        "x": ("unit input X", "unit<"),
        **{f"{key}{v}": (text.format(v), f"unit.gcus.{k}{path}")
           for k, v in enumerate((2, 4, 8, 32))
           for key, text, path in (("z", "|V|={}: nodes A Z", ".weight<"), ("g", "ReLU(A Z W_g)", ".weight"),
                                   ("r", "Q Z~ + BN", ""))},
        "cat": ("concat with X", "unit"), "head": ("head: class scores", "head")},
        "; ".join(f"x>z{v}>g{v}>r{v}>cat" for v in (2, 4, 8, 32)) + "; x>cat; cat>head"),
    "gi_unit": ("ginet", dict(depth=18, width=8, mid=32, classes=get_variant("context").classes), {
        "x": ("unit input X", "unit<"), "z": ("projection Z", "unit.proj"), "xw": ("X W", "unit.reduce"),
        "s": ("semantic graph S", "unit.s2v<"), "pin": ("P + A_sv S W_sv", "unit.gcn_v<"),
        "po": ("P_o (GCN)", "unit.gcn_v"), "sin": ("S + A_vs P_o W_vs", "unit.gcn_s<"),
        "so": ("S_o (GCN)", "unit.gcn_s"), "sc": ("class scores", "unit.score"),
        "out": ("Z^T P_o, W_o", "unit.out"), "y": ("X + BN(...)", "unit")},
        "x>z>pin; x>xw>pin; s>pin>po>sin>so>sc; s>sin; po>out>y; z>out; x>y"),
    "solo": ("solo", dict(thing_ids=(3, 4, 5), preset="cpu", width=8, image_size=96), {
        "x": ("image", "input"), "c2": ("ResNet c2", "backbone.layer1"), "c5": ("ResNet c5", "backbone.layer4"),
        "p3": ("FPN P3 (level 0)", "fpn@1"), "grid": ("resized to S x S", "cate_tower<"),
        "cate": ("category: C per cell", "cate_out"),
        "coord": ("+ x, y (CoordConv)", "mask_tower<"),
        "mx": ("mask X: S column maps", "mask_out_x.0"),
        "my": ("mask Y: S row maps", "mask_out_y.0")},
        "x>c2>c5>p3>grid>cate; c2>p3; p3>coord>mx; coord>my"),
    "upsnet": ("upsnet", dict(thing_ids=(3, 4, 5), stuff_ids=(0, 1, 2), preset="cpu", width=8), {
        "x": ("image", "input"), "c2": ("ResNet c2", "backbone.layer1"), "c5": ("ResNet c5", "backbone.layer4"),
        "p5": ("FPN P5", "fpn@3"), "p2": ("FPN P2", "fpn@0"),
        "rpn": ("RPN: objectness of all anchors", "rpn"), "roi": ("RoIAlign, per RoI", "box_head<"),
        "box": ("box head: K+1 scores", "box_head"), "mroi": ("RoIAlign, per detection", "mask_head<"),
        "mask": ("mask head: K masks", "mask_head"), "sub": ("semantic subnet", "semantic_head.subnet"),
        "sem": ("semantic head: class logits", "semantic_head")},
        "x>c2>c5>p5>p2>rpn>roi>box>mroi>mask; c2>p2; p2>roi; p2>mroi; p2>sub>sem"),
}


def architecture_shapes(name, size=96, num_classes=6):
    """Build the course model of diagram ``name`` at a small width and trace its blocks.

    Args:
        name: a key of ``ARCHITECTURES``.
        size: side of the square input image in pixels.
        num_classes: classes of the model built.
    Returns:
        (labels {key: label}, shapes {key: shape}, edges [(key, key)], input size).
    """
    model_name, kwargs, blocks, flow = ARCHITECTURES[name]
    state = paddle.get_rng_state()         # drawing a diagram must not change a later training run
    try:
        paddle.seed(0)
        model = build_model(model_name, num_classes, **kwargs)
        x = paddle.randn([1, 3, size, size])
        shapes = trace(model, {k: p for k, (_, p) in blocks.items()}, x)
    finally:
        paddle.set_rng_state(state)
    return {k: lbl for k, (lbl, _) in blocks.items()}, shapes, _parse(flow), size


def _layout(shapes, edges, size):
    """x = longest path from the first block; y = -log2(stride) of 4-D maps, graph/vector
    blocks (no H, W) one row below the lowest map; in a column, a block that would sit on
    another moves down 1.2 rows, one less than a row below another moves down to a row below
    (the scales 1, 0.75, 0.5 of a multi-scale input are less than a row apart)."""
    keys = list(shapes)
    depth = {k: 0 for k in keys}
    for _ in keys:                                     # longest path in a small DAG
        for a, b in edges:
            depth[b] = max(depth[b], depth[a] + 1)
    level = {k: -math.log2(size / s[1]) for k, s in shapes.items() if len(s) == 3}
    low = min(level.values(), default=0.0) - 1.5
    pos, placed = {}, {}                               # column -> rows taken, top down
    for k in sorted(keys, key=lambda k: (depth[k], -round(level.get(k, low), 2))):   # stable
        y, rows = level.get(k, low), placed.setdefault(depth[k], [])
        for r in sorted(rows, reverse=True):           # top down: y only moves down
            if abs(y - r) < 1e-2:
                y = r - 1.2
            elif abs(y - r) < 1.0:
                y = r - 1.0
        rows.append(y)
        pos[k] = (depth[k] * 1.6, y * 1.3)
    return {k: pos[k] for k in keys}


def draw(labels, shapes, edges, size, ax=None, title=None):
    """Draw a traced diagram.

    Args:
        labels: {key: text above the block}.
        shapes: {key: shape without the batch dimension}, from ``trace``.
        edges: [(key, key)] data flow; arrows spanning more than one column are drawn red
            and curved (skip connections).
        size: the input's side in pixels (sets each block's resolution level).
        ax: matplotlib axes to draw on; a new figure when None.
        title: figure title; a default one says what the shapes mean.
    Returns:
        The matplotlib axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    pos = _layout(shapes, edges, size)
    if ax is None:
        xs = [p[0] for p in pos.values()]
        ys = [p[1] for p in pos.values()]
        _, ax = plt.subplots(figsize=(max(6.0, 0.85 * (max(xs) - min(xs)) + 2.0),
                                      max(2.5, 0.6 * (max(ys) - min(ys)) + 2.0)))
    for k, (x, y) in pos.items():
        s = shapes[k]
        h = 0.35 + 0.07 * math.log2(max(s[0], 1))      # taller box: more channels
        ax.add_patch(FancyBboxPatch((x - 0.65, y - h / 2), 1.3, h, boxstyle="round,pad=0.02",
                                    fc="#dbe9f6" if len(s) == 3 else "#f6e3c7", ec="#335"))
        ax.text(x, y + h / 2 + 0.08, labels[k], ha="center", va="bottom", fontsize=7,
                bbox=dict(fc="white", ec="none", pad=0.3), zorder=2)                # skips pass behind
        ax.text(x, y, " x ".join(str(v) for v in s), ha="center", va="center", fontsize=7, family="monospace")
    for a, b in edges:
        (xa, ya), (xb, yb) = pos[a], pos[b]
        skip = abs(xb - xa) > 1.7
        ax.add_patch(FancyArrowPatch((xa + 0.65, ya), (xb - 0.65, yb), arrowstyle="-|>", mutation_scale=8,
                                     color="#c44" if skip else "#335", lw=0.9,
                                     connectionstyle="arc3,rad=-0.25" if skip else "arc3",
                                     zorder=0.5 if skip else 1))        # a long skip passes behind boxes
    xs = np.array([p[0] for p in pos.values()])
    ys = np.array([p[1] for p in pos.values()])
    ax.set_xlim(xs.min() - 1, xs.max() + 1)
    arcs = [abs(pos[b][0] - pos[a][0]) for a, b in edges if abs(pos[b][0] - pos[a][0]) > 1.7]
    ax.set_ylim(ys.min() - 0.9, ys.max() + 1.0 + 0.13 * max(arcs, default=0))   # room for skip arcs
    ax.axis("off")
    ax.set_title(title or f"shapes of one {size}x{size} image (C x H x W; red: skip connections)", fontsize=9)
    return ax


def draw_architecture(name, size=96, ax=None):
    """Trace and draw one of ``ARCHITECTURES`` on a random image.

    Args:
        name: a key of ``ARCHITECTURES`` (fcn8s, unet, pspnet, deeplabv1, deeplabv2,
            deeplabv2_msc, deeplabv3plus, glore_unit, gcu_block, gi_unit, panoptic_deeplab,
            mask_rcnn, solo, upsnet).
        size: side of the square input image in pixels.
        ax: matplotlib axes to draw on; a new figure when None.
    Returns:
        The matplotlib axes.
    """
    labels, shapes, edges, size = architecture_shapes(name, size)
    return draw(labels, shapes, edges, size, ax=ax, title=f"{name}: {size}x{size} input, shapes C x H x W "
                "read from the model's layers (red: skips)")
