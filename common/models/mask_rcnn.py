"""Mask R-CNN (He et al., ICCV 2017): top-down instance segmentation (实例分割).

Stage one, the region proposal network (RPN, 区域建议网络), scores anchors (锚框) on every
level of a feature pyramid (FPN) and regresses them into proposals; stage two cuts each
proposal out of the pyramid with RoIAlign and predicts its class, a box refinement and a
binary mask per class. ``model(images, targets)`` in train mode returns the dict of the
five losses; in eval mode ``model(images)`` returns, per image, a dict of NumPy arrays
``boxes`` (n, 4), ``scores`` (n,), ``labels`` (n,) and ``masks`` (n, H, W) bool.

Defaults are the paper's (ResNet-50-FPN, anchors 32..512 on P2..P6, 512 RoIs, 28x28
masks); ``build_model('mask_rcnn', K, preset='cpu')`` is the course's size for 64..96-pixel scenes.
``levels=(4,)`` with ``rpn_p6=False`` gives a single-level (C4-like) detector.
``num_classes`` counts all the dataset's classes (stuff and background included, as for
UPSNet and SOLO); ``thing_ids`` names the thing classes, the ones detected (default: all).
Labels in and out are these dataset class ids; internally class 0 is background and
thing_ids[k] is class k + 1.
"""
from __future__ import annotations

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.vision.ops import roi_align

from ..ops import boxes as box_ops
from .backbones.resnet import ResNet
from .layers import FPN
from .registry import register

RCNN_WEIGHTS = (10.0, 10.0, 5.0, 5.0)   # box-delta scaling of the second stage (Fast R-CNN)


class RPNHead(nn.Layer):
    """3x3 conv shared by all levels, then per anchor one objectness logit and 4 deltas."""

    def __init__(self, channels, num_anchors):
        super().__init__()
        init = nn.initializer.Normal(std=0.01)
        self.conv = nn.Conv2D(channels, channels, 3, padding=1, weight_attr=init)
        self.objectness = nn.Conv2D(channels, num_anchors, 1, weight_attr=init)
        self.deltas = nn.Conv2D(channels, 4 * num_anchors, 1, weight_attr=init)

    def forward(self, feats):
        objs, deltas = [], []
        for f in feats:
            t = F.relu(self.conv(f))
            n, _, h, w = t.shape
            # (N, A, H, W) -> (N, H*W*A): the (y, x, a) order of box_ops.grid_anchors
            objs.append(self.objectness(t).transpose([0, 2, 3, 1]).reshape([n, -1]))
            d = self.deltas(t).reshape([n, -1, 4, h, w]).transpose([0, 3, 4, 1, 2])
            deltas.append(d.reshape([n, -1, 4]))
        return objs, deltas


class BoxHead(nn.Layer):
    """Two fully connected layers on the 7x7 RoI features, then class scores (K + 1,
    background first) and class-specific box deltas (K x 4)."""

    def __init__(self, in_channels, roi_size, fc_channels, num_things):
        super().__init__()
        self.fc1 = nn.Linear(in_channels * roi_size * roi_size, fc_channels)
        self.fc2 = nn.Linear(fc_channels, fc_channels)
        self.cls = nn.Linear(fc_channels, num_things + 1, weight_attr=nn.initializer.Normal(std=0.01))
        self.box = nn.Linear(fc_channels, 4 * num_things, weight_attr=nn.initializer.Normal(std=0.001))

    def forward(self, x):
        x = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return self.cls(x), self.box(x)


class MaskHead(nn.Layer):
    """A small FCN on the RoI features: convs, a 2x transposed conv, one mask logit map per
    class (the class competition is left to the box head: a sigmoid per class)."""

    def __init__(self, in_channels, channels, num_convs, num_things):
        super().__init__()
        layers, c = [], in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2D(c, channels, 3, padding=1), nn.ReLU()]
            c = channels
        self.convs = nn.Sequential(*layers)
        self.up = nn.Conv2DTranspose(channels, channels, 2, stride=2)
        self.predict = nn.Conv2D(channels, num_things, 1, weight_attr=nn.initializer.Normal(std=0.001))

    def forward(self, x):
        return self.predict(F.relu(self.up(self.convs(x))))


class MaskRCNN(nn.Layer):
    """Mask R-CNN on a ResNet + FPN (see the module doc).

    Args:
        num_classes: all classes of the dataset (background and stuff included).
        thing_ids: the dataset class ids of the thing classes it detects (default: all
            ``range(num_classes)``); its labels are these ids.
        depth: ResNet depth.
        width: ResNet stem channels (64 in the paper).
        pretrained: backbone weights (see ``ResNet``).
        levels: FPN levels used, 2 = stride 4 (C2) ... 5 = stride 32.
        rpn_p6: add P6 (stride-2 subsample of the top level) for the RPN.
        fpn_channels: channels of every FPN level.
        anchor_sizes: one anchor size per RPN level.
        anchor_ratios: aspect ratios h / w of the anchors.
        rpn_batch: anchors sampled per image for the RPN loss (half foreground at most).
        rpn_nms: IoU threshold of the proposals' NMS.
        rpn_pre_nms: (train, eval) top anchors per level before NMS.
        rpn_post_nms: (train, eval) proposals kept per image.
        roi_batch: RoIs sampled per image for the box and mask losses.
        roi_pos_fraction: at most this fraction of them foreground.
        box_roi_size: RoIAlign output side of the box head.
        fc_channels: width of the box head's two fully connected layers.
        mask_roi_size: RoIAlign output side of the mask head (masks are twice that).
        mask_channels: channels of the mask head's convs.
        mask_convs: number of them.
        canonical_size: box size that maps to level 4 (FPN eq. 1; 224 for ImageNet scale).
        score_thresh: detections below this class score are dropped.
        nms_thresh: IoU threshold of the per-class NMS of the detections.
        max_detections: detections kept per image.
        mask_thresh: probability at which a pasted mask is binarised.
    """

    task = "instance"          # how common.engine.Trainer trains and scores it

    def __init__(self, num_classes, thing_ids=None, depth=50, width=64, pretrained=None,
                 levels=(2, 3, 4, 5), rpn_p6=True, fpn_channels=256,
                 anchor_sizes=(32, 64, 128, 256, 512), anchor_ratios=(0.5, 1.0, 2.0),
                 rpn_batch=256, rpn_nms=0.7, rpn_pre_nms=(2000, 1000), rpn_post_nms=(1000, 1000),
                 roi_batch=512, roi_pos_fraction=0.25, box_roi_size=7, fc_channels=1024,
                 mask_roi_size=14, mask_channels=256, mask_convs=4, canonical_size=224,
                 score_thresh=0.05, nms_thresh=0.5, max_detections=100, mask_thresh=0.5):
        super().__init__()
        self.num_classes = num_classes
        self.thing_ids = tuple(range(num_classes) if thing_ids is None else thing_ids)
        k = len(self.thing_ids)
        lut = np.full(max(max(self.thing_ids), num_classes) + 1, -1, np.int64)
        lut[list(self.thing_ids)] = np.arange(1, k + 1)
        self._lut = lut                                     # dataset class id -> 1..K
        self.levels, self.strides = tuple(levels), [2 ** lv for lv in levels]
        rpn_levels = len(levels) + int(rpn_p6)
        if len(anchor_sizes) != rpn_levels:
            raise ValueError(f"anchor_sizes needs one size per RPN level ({rpn_levels}), "
                             f"got {anchor_sizes}")
        self.rpn_strides = self.strides + ([self.strides[-1] * 2] if rpn_p6 else [])
        self.anchor_sizes, self.anchor_ratios = tuple(anchor_sizes), tuple(anchor_ratios)
        self.backbone = ResNet(depth, width, 32, pretrained=pretrained)
        self.fpn = FPN([self.backbone.channels[lv - 2] for lv in levels], fpn_channels, p6=rpn_p6)
        self.rpn = RPNHead(fpn_channels, len(anchor_ratios))
        self.box_head = BoxHead(fpn_channels, box_roi_size, fc_channels, k)
        self.mask_head = MaskHead(fpn_channels, mask_channels, mask_convs, k)
        self.rpn_batch, self.rpn_nms = rpn_batch, rpn_nms
        self.rpn_pre_nms, self.rpn_post_nms = rpn_pre_nms, rpn_post_nms
        self.roi_batch, self.roi_pos_fraction = roi_batch, roi_pos_fraction
        self.box_roi_size, self.mask_roi_size = box_roi_size, mask_roi_size
        self.mask_size = 2 * mask_roi_size
        self.canonical_size = canonical_size
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.max_detections, self.mask_thresh = max_detections, mask_thresh
        self._anchor_cache = {}

    # ------------------------------------------------------------ features
    def features(self, images):
        """FPN maps: one per entry of ``levels`` (+ P6 for the RPN)."""
        c = self.backbone(images)
        return self.fpn([c[lv - 2] for lv in self.levels])

    def anchors(self, feats):
        """Anchors (H*W*A, 4) of each RPN level, cached by feature size."""
        key = tuple(tuple(f.shape[-2:]) for f in feats)
        if key not in self._anchor_cache:
            self._anchor_cache[key] = [
                paddle.to_tensor(box_ops.grid_anchors(f.shape[-2:], s, [size], self.anchor_ratios))
                for f, s, size in zip(feats, self.rpn_strides, self.anchor_sizes)]
        return self._anchor_cache[key]

    def roi_features(self, feats, rois, size):
        """RoIAlign each RoI on its FPN level: level = 4 + log2(sqrt(area) / canonical),
        clamped to the pyramid (FPN paper, eq. 1). ``rois`` is a list per image."""
        counts = [r.shape[0] for r in rois]
        if sum(counts) == 0:
            return paddle.zeros([0, feats[0].shape[1], size, size])
        boxes = paddle.concat(rois)
        img = paddle.concat([paddle.full([c], i, "int64") for i, c in enumerate(counts)])
        scale = paddle.sqrt(box_ops.box_area(boxes).clip(min=1e-6))
        lvl = paddle.floor(4 + paddle.log2(scale / self.canonical_size + 1e-8))
        lvl = lvl.clip(self.levels[0], self.levels[-1]).astype("int64")
        outs, order = [], []
        for lv, feat, stride in zip(self.levels, feats, self.strides):
            idx = paddle.nonzero(lvl == lv).flatten()
            if idx.shape[0] == 0:
                continue
            num = paddle.bincount(img[idx], minlength=len(rois)).astype("int32")
            outs.append(roi_align(feat, boxes[idx], num, size, 1.0 / stride, 2, True))
            order.append(idx)
        # RoIs stay in image order within a level, so the pieces only need un-permuting
        return paddle.concat(outs)[paddle.argsort(paddle.concat(order))]

    # ----------------------------------------------------------------- RPN
    def proposals(self, anchors, objs, deltas, image_size):
        """Per image: top-scoring anchors of each level, decoded, clipped, NMS across
        levels separately, best ``rpn_post_nms`` kept. No gradient flows into them."""
        pre, post = self.rpn_pre_nms[not self.training], self.rpn_post_nms[not self.training]
        out = []
        with paddle.no_grad():
            n = objs[0].shape[0]
            boxes, scores, lvls = [], [], []
            for lv, (anc, o, d) in enumerate(zip(anchors, objs, deltas)):
                s, top = paddle.topk(o, min(pre, o.shape[1]), axis=1)       # (N, k), whole batch
                d = paddle.take_along_axis(d, top[..., None].expand([n, top.shape[1], 4]), 1)
                b = box_ops.decode_boxes(anc[top.flatten()], d.reshape([-1, 4]))
                boxes.append(box_ops.clip_boxes(b, image_size).reshape([n, -1, 4]))
                scores.append(s)
                lvls.append(paddle.full([s.shape[1]], lv, "int64"))
            boxes, scores, lvls = paddle.concat(boxes, 1), paddle.concat(scores, 1), paddle.concat(lvls)
            big = ((boxes[..., 2:] - boxes[..., :2]) > 1).all(-1)               # drop slivers
            for i in range(n):
                ok = paddle.nonzero(big[i]).flatten()
                keep = box_ops.batched_nms(boxes[i][ok], scores[i][ok], lvls[ok], self.rpn_nms, post)
                out.append(boxes[i][ok][keep])
        return out

    def rpn_losses(self, anchors, objs, deltas, targets):
        """Objectness BCE on ``rpn_batch`` sampled anchors per image (half foreground at
        most), smooth-L1 box loss on the foreground ones; both / number sampled."""
        anchors = paddle.concat(anchors)
        objs, deltas = paddle.concat(objs, 1), paddle.concat(deltas, 1)
        cls_loss, box_loss, count = 0.0, 0.0, 0
        for i, t in enumerate(targets):
            gt = t["boxes"]
            with paddle.no_grad():
                matched, labels = box_ops.match_boxes(box_ops.box_iou(anchors, gt), 0.7, 0.3, True)
                pos, neg = box_ops.sample_labels(labels, self.rpn_batch, 0.5)
            idx = paddle.concat([pos, neg])
            lab = paddle.concat([paddle.ones([pos.shape[0]]), paddle.zeros([neg.shape[0]])])
            cls_loss = cls_loss + F.binary_cross_entropy_with_logits(objs[i][idx], lab, reduction="sum")
            if pos.shape[0]:
                target = box_ops.encode_boxes(anchors[pos], gt[matched[pos]])
                box_loss = box_loss + box_ops.smooth_l1(deltas[i][pos], target, beta=1 / 9)
            count += idx.shape[0]
        return dict(loss_rpn_cls=cls_loss / max(count, 1), loss_rpn_box=box_loss / max(count, 1))

    # --------------------------------------------------------- second stage
    def to_internal(self, labels):
        return paddle.to_tensor(self._lut)[labels]

    def sample_rois(self, proposals, targets):
        """Per image: proposals + ground-truth boxes, matched at IoU 0.5, ``roi_batch``
        sampled with at most ``roi_pos_fraction`` foreground. Returns the RoIs and their
        class (0 = background), box targets and matched ground-truth index."""
        samples = []
        with paddle.no_grad():
            for props, t in zip(proposals, targets):
                gt = t["boxes"]
                props = paddle.concat([props, gt])
                matched, labels = box_ops.match_boxes(box_ops.box_iou(props, gt), 0.5, 0.5)
                pos, neg = box_ops.sample_labels(labels, self.roi_batch, self.roi_pos_fraction)
                rois = paddle.concat([props[pos], props[neg]])
                gidx = matched[pos]
                cls = paddle.concat([self.to_internal(t["labels"][gidx]) if pos.shape[0] else
                                     paddle.zeros([0], "int64"), paddle.zeros([neg.shape[0]], "int64")])
                box_t = box_ops.encode_boxes(props[pos], gt[gidx], RCNN_WEIGHTS) if pos.shape[0] else None
                samples.append(dict(rois=rois, cls=cls, num_pos=int(pos.shape[0]), box_t=box_t, gidx=gidx))
        return samples

    def box_losses(self, feats, samples):
        logits, deltas = self.box_head(self.roi_features(feats, [s["rois"] for s in samples],
                                                         self.box_roi_size))
        cls = paddle.concat([s["cls"] for s in samples])
        loss_cls = F.cross_entropy(logits, cls)
        # rows of foreground RoIs: the first num_pos of each image's block
        start, rows, targets = 0, [], []
        for s in samples:
            rows.append(paddle.arange(start, start + s["num_pos"]))
            if s["num_pos"]:
                targets.append(s["box_t"])
            start += s["rois"].shape[0]
        rows = paddle.concat(rows)
        loss_box = paddle.zeros([])
        if rows.shape[0]:
            k = len(self.thing_ids)
            picked = deltas.reshape([-1, 4])[rows * k + cls[rows] - 1]
            loss_box = box_ops.smooth_l1(picked, paddle.concat(targets), beta=1.0) / cls.shape[0]
        return dict(loss_cls=loss_cls, loss_box=loss_box)

    def mask_logits(self, feats, boxes, classes):
        """Mask logits (R, m, m) of each box's class (internal 1..K), boxes a list per image."""
        if sum(b.shape[0] for b in boxes) == 0:
            return paddle.zeros([0, self.mask_size, self.mask_size])
        out = self.mask_head(self.roi_features(feats, boxes, self.mask_roi_size))
        k = out.shape[1]
        return out.reshape([-1, self.mask_size, self.mask_size])[
            paddle.arange(out.shape[0]) * k + classes - 1]

    def mask_loss(self, feats, samples, targets):
        """Per-pixel BCE between the mask of the RoI's true class and the ground-truth
        mask cut to the RoI (RoIAlign of the binary mask, thresholded at 0.5)."""
        rois = [s["rois"][:s["num_pos"]] for s in samples]
        if sum(r.shape[0] for r in rois) == 0:
            return dict(loss_mask=paddle.zeros([]))
        cls = paddle.concat([s["cls"][:s["num_pos"]] for s in samples])
        logits = self.mask_logits(feats, rois, cls)
        with paddle.no_grad():
            gt = paddle.concat([box_ops.crop_and_resize(t["masks"][s["gidx"]], r, self.mask_size)
                                for s, r, t in zip(samples, rois, targets) if r.shape[0]])
            gt = (gt >= 0.5).astype("float32")
        return dict(loss_mask=F.binary_cross_entropy_with_logits(logits, gt))

    # ----------------------------------------------------------- inference
    def detect(self, feats, proposals, image_size):
        """Per image: class scores and boxes of every proposal, score threshold, NMS per
        class, best ``max_detections``; then the mask logits of the kept boxes.
        Returns a list of dicts of tensors: boxes, scores, classes (1..K), mask_logits."""
        logits, deltas = self.box_head(self.roi_features(feats, proposals, self.box_roi_size))
        probs = F.softmax(logits, -1)
        k = len(self.thing_ids)
        results, start = [], 0
        for props in proposals:
            r = props.shape[0]
            p, d = probs[start:start + r, 1:], deltas[start:start + r]
            start += r
            boxes = box_ops.decode_boxes(paddle.repeat_interleave(props, k, 0), d.reshape([-1, 4]),
                                     RCNN_WEIGHTS)
            boxes = box_ops.clip_boxes(boxes, image_size)
            scores = p.flatten()
            classes = paddle.tile(paddle.arange(1, k + 1), [r])
            ok = paddle.nonzero(scores > self.score_thresh).flatten()
            boxes, scores, classes = boxes[ok], scores[ok], classes[ok]
            keep = box_ops.batched_nms(boxes, scores, classes, self.nms_thresh, self.max_detections)
            results.append(dict(boxes=boxes[keep], scores=scores[keep], classes=classes[keep]))
        mask = self.mask_logits(feats, [x["boxes"] for x in results],
                                paddle.concat([x["classes"] for x in results]))
        start = 0
        for x in results:
            n = x["boxes"].shape[0]
            x["mask_logits"] = mask[start:start + n]
            start += n
        return results

    def to_numpy(self, result, image_size):
        """A ``detect`` result -> NumPy boxes, scores, labels (thing ids), masks pasted in."""
        probs = box_ops.paste_masks(F.sigmoid(result["mask_logits"]), result["boxes"], image_size)
        ids = np.asarray(self.thing_ids, np.int64)
        return dict(boxes=result["boxes"].numpy().reshape(-1, 4), scores=result["scores"].numpy(),
                    labels=ids[result["classes"].numpy() - 1],
                    masks=probs.numpy().reshape(-1, *image_size) >= self.mask_thresh)

    def target_transform(self):
        """Training targets built in the data pipeline: none (Mask R-CNN samples its RoIs
        from the proposals of each step, on the device)."""
        return None

    # ------------------------------------------------------------- forward
    def instance_forward(self, feats, image_size, targets=None):
        """RPN and RoI heads on ready features: the loss dict (with targets) or detections."""
        anchors = self.anchors(feats)
        objs, deltas = self.rpn(feats)
        proposals = self.proposals(anchors, objs, deltas, image_size)
        box_feats = feats[:len(self.levels)]           # P6 only feeds the RPN
        if targets is None:
            return self.detect(box_feats, proposals, image_size)
        losses = self.rpn_losses(anchors, objs, deltas, targets)
        samples = self.sample_rois(proposals, targets)
        losses.update(self.box_losses(box_feats, samples))
        losses.update(self.mask_loss(box_feats, samples, targets))
        return losses

    def forward(self, images, targets=None):
        if self.training and targets is None:
            raise ValueError("Mask R-CNN in train mode needs targets (a list of dicts with "
                             "boxes, labels, masks); call model.eval() to predict")
        size = tuple(images.shape[-2:])
        out = self.instance_forward(self.features(images), size, targets if self.training else None)
        if self.training:
            return out
        return [self.to_numpy(r, size) for r in out]


@register("mask_rcnn")
def mask_rcnn(num_classes, **kwargs):
    return MaskRCNN(num_classes, **kwargs)
