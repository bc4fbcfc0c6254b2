"""focalgrad's toy RetinaNet as a PyTorch module, built from a run's config.json: the same layers in
the same order, so that its state_dict has exactly the names, shapes and layouts of focalgrad's
checkpoint (model.safetensors) and its outputs equal focalgrad's for the same weights."""

import math

import torch
import torch.nn.functional as F
from torch import nn


def groups_for(channels):
    """The largest group count <= 8 that divides `channels` (what focalgrad's RetinaNet uses)."""
    for g in range(min(8, channels), 1, -1):
        if channels % g == 0:
            return g
    return 1


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's (and focalgrad's) "same" padding: ceil(H / stride) rows out,
    an odd total of zeros mostly after. PyTorch's own padding="same" refuses stride > 1, and a
    symmetric padding of 1 would shift a stride-2 3 × 3 window by one pixel on even sizes."""

    def forward(self, x):
        pads = []
        for size, k, s, d in zip(
            reversed(x.shape[2:]), reversed(self.kernel_size), reversed(self.stride), reversed(self.dilation)
        ):
            out = math.ceil(size / s)
            total = max(0, (out - 1) * s + d * (k - 1) + 1 - size)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def conv_block(in_channels, out_channels, stride, norm):
    """conv 3 × 3 without bias, norm, ReLU: focalgrad's convBlock."""
    layer = (
        nn.GroupNorm(groups_for(out_channels), out_channels, eps=1e-5)
        if norm == "group"
        else nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1)
    )
    return nn.Sequential(SameConv2d(in_channels, out_channels, 3, stride=stride, bias=False), layer, nn.ReLU())


class Backbone(nn.Module):
    def __init__(self, config):
        super().__init__()
        stages = []
        in_channels = 3
        for i, channels in enumerate(config["backboneChannels"]):
            blocks = [conv_block(in_channels, channels, 2, config["norm"])]
            if i >= 1:
                blocks += [conv_block(channels, channels, 1, config["norm"]) for _ in range(config["stageDepth"])]
            stages.append(nn.Sequential(*blocks))
            in_channels = channels
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        """C1 … C_S, one per stage."""
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


class FeaturePyramid(nn.Module):
    def __init__(self, config):
        super().__init__()
        width = config["fpnChannels"]
        channels = config["backboneChannels"]
        stages = len(channels)
        lowest, highest = config["levels"][0], config["levels"][-1]
        # Levels up to the backbone's last stage take its C_l; the ones above are stride-2 convs,
        # the first on the last C, the next on ReLU of the previous level.
        self.first = lowest - 1
        inputs = channels[lowest - 1 : min(highest, stages)]
        self.lateral = nn.ModuleList(SameConv2d(c, width, 1) for c in inputs)
        self.output = nn.ModuleList(SameConv2d(width, width, 3) for _ in inputs)
        self.extra = nn.ModuleList(
            SameConv2d(channels[-1] if level == stages + 1 else width, width, 3, stride=2)
            for level in range(stages + 1, highest + 1)
        )

    def forward(self, *backbone):
        features = list(backbone[self.first : self.first + len(self.lateral)])
        merged = [None] * len(features)
        for i in reversed(range(len(features))):
            lateral = self.lateral[i](features[i])
            merged[i] = lateral if i == len(features) - 1 else lateral + F.interpolate(merged[i + 1], scale_factor=2, mode="nearest")
        pyramid = [conv(m) for conv, m in zip(self.output, merged)]
        previous = backbone[-1]
        for i, conv in enumerate(self.extra):
            previous = conv(previous if i == 0 else F.relu(previous))
            pyramid.append(previous)
        return pyramid


class Subnet(nn.Module):
    def __init__(self, in_channels, width, depth, outputs, num_anchors, norm):
        super().__init__()
        layers = []
        channels = in_channels
        for _ in range(depth):
            layers.append(SameConv2d(channels, width, 3))
            if norm == "group":
                layers.append(nn.GroupNorm(groups_for(width), width, eps=1e-5))
            layers.append(nn.ReLU())
            channels = width
        layers.append(SameConv2d(channels, outputs * num_anchors, 3))
        self.layers = nn.Sequential(*layers)
        self.outputs = outputs

    def forward(self, feature):
        y = self.layers(feature)
        # [B, A · K, H, W] → [B, H · W · A, K]: positions row-major, anchors innermost.
        return y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, self.outputs)


class RetinaNet(nn.Module):
    """focalgrad's RetinaNet for the resolved model config of a run (config.json's detector.model).
    forward(images [B, 3, H, W]) returns (logits [B, N, C], regression [B, N, 4])."""

    def __init__(self, config):
        super().__init__()
        if config["norm"] not in ("group", "batch") or config["headNorm"] not in ("group", "none"):
            raise ValueError(f"RetinaNet: unknown norm {config['norm']!r} or headNorm {config['headNorm']!r}")
        self.backbone = Backbone(config)
        self.fpn = FeaturePyramid(config)
        c, a = config["numClasses"], config["numAnchors"]
        args = (config["fpnChannels"], config["headWidth"], config["headDepth"])
        self.classification = Subnet(*args, c, a, config["headNorm"])
        self.regression = Subnet(*args, 4, a, config["headNorm"])

    def forward(self, images):
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"RetinaNet: images must be [batch, 3, height, width], got {list(images.shape)}")
        pyramid = self.fpn(*self.backbone(images))
        logits = torch.cat([self.classification(p) for p in pyramid], 1)
        regression = torch.cat([self.regression(p) for p in pyramid], 1)
        return logits, regression
