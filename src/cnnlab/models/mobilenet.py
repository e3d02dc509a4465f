"""MobileNetV2 (Sandler et al., 2018): inverted residuals with linear bottlenecks.

Each block expands the channels by ``t`` with a 1x1 conv, filters each
channel on its own with a 3x3 *depthwise* conv (``groups`` = channels), then
projects back down with a 1x1 conv and no activation (the linear
bottleneck). Where stride is 1 and the channels match, the input is added
back. A depthwise 3x3 plus a pointwise 1x1 costs ``1/N + 1/9`` of a full 3x3
conv with N output channels.

``variant=imagenet`` is the published network (torchvision's
``mobilenet_v2``: 3,504,872 parameters and 0.301 G multiply-adds at
3x224x224 with 1000 classes). ``variant=cifar`` keeps the first conv and
the first stride-2 stage at stride 1, so a 32x32 image ends at 4x4 rather
than 1x1. ``width_mult`` scales every channel count (rounded to multiples
of 8).

>>> from cnnlab.models import create_model
>>> net = create_model("mobilenet_v2", num_classes=10, width_mult=0.5)
>>> net.features[1].expand is None        # the first block has t = 1: no expansion conv
True
"""

from __future__ import annotations

from functools import partial
from typing import Optional

import torch
from torch import nn

from cnnlab.models import checks
from cnnlab.models.base import ImageClassifier
from cnnlab.models.layers import VARIANT_IMAGE_SIZE, ActArg, ConvNormAct, NormArg, make_divisible, zoo_setup
from cnnlab.models.registry import register_model

MIN_WIDTH_MULT, MAX_WIDTH_MULT = 0.05, 16.0  # below, every layer is rounded up to 8 channels; above, absurd

# (expansion t, output channels c, repeats n, first stride s) -- Table 2 of the paper.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    """1x1 expand (x t) -> 3x3 depthwise (stride) -> 1x1 linear projection, plus x when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int, norm_layer, act_layer) -> None:
        super().__init__()
        hidden = round(in_ch * expand_ratio)
        self.use_residual = stride == 1 and in_ch == out_ch
        conv = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        self.expand = conv(in_ch, hidden, 1) if expand_ratio != 1 else None
        self.depthwise = conv(hidden, hidden, 3, stride=stride, groups=hidden)  # (N, h, H/s, W/s)
        self.project = conv(hidden, out_ch, 1, act_layer=None)  # linear bottleneck: no activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(out))
        return x + out if self.use_residual else out


@register_model("mobilenet_v2")
class MobileNetV2(ImageClassifier):
    """MobileNetV2; see the module docstring. ``dropout`` is applied before the classifier."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: Optional[int] = None,
        variant: str = "cifar",
        width_mult: float = 1.0,
        dropout: float = 0.2,
        norm: NormArg = "batchnorm",
        activation: ActArg = "relu6",
    ) -> None:
        norm_layer, act_layer = zoo_setup("mobilenet_v2", variant, norm, activation)
        super().__init__(in_channels, num_classes, image_size, VARIANT_IMAGE_SIZE[variant])
        checks.positive_float("width_mult", width_mult, minimum=MIN_WIDTH_MULT, maximum=MAX_WIDTH_MULT)
        checks.fraction("dropout", dropout)
        cifar = variant == "cifar"

        ch = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        conv = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        layers: list[nn.Module] = [conv(in_channels, ch, 3, stride=1 if cifar else 2)]
        for stage, (t, c, n, s) in enumerate(INVERTED_RESIDUAL_SETTING):
            out_ch = make_divisible(c * width_mult)
            if cifar and stage == 1:
                s = 1  # CIFAR: 32 -> 32 -> 16 -> 8 -> 4 instead of 224 -> 112 -> ... -> 7
            for i in range(n):
                layers.append(InvertedResidual(ch, out_ch, s if i == 0 else 1, t, norm_layer, act_layer))
                ch = out_ch
        layers.append(conv(ch, last, 1))  # (N, 1280, H/32, W/32) imagenet
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(last, num_classes))

        # He init for the convs (fan-out), as torchvision's mobilenet_v2 does.
        self.init_weights(conv="kaiming_normal_fan_out", linear="normal_0.01", norm=True)
