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

from typing import Optional

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import ImageClassifier
from cnnlab.models.registry import register_model
from cnnlab.models.resnet import ActArg, NormArg, zoo_setup

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


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never dropping more than 10%.

    >>> make_divisible(32 * 0.75), make_divisible(1280 * 1.0)
    (24, 1280)
    """
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class ConvNormAct(nn.Sequential):
    """conv (no bias) -> norm -> [act]; ``groups=in_ch`` makes it depthwise."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, norm_layer, act_layer,
                 groups: int = 1) -> None:
        layers = [nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                            groups=groups, bias=False), norm_layer(out_ch)]
        if act_layer is not None:
            layers.append(act_layer())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand (x t) -> 3x3 depthwise (stride) -> 1x1 linear projection, plus x when shapes match."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int, norm_layer, act_layer) -> None:
        super().__init__()
        hidden = round(in_ch * expand_ratio)
        self.use_residual = stride == 1 and in_ch == out_ch
        self.expand = ConvNormAct(in_ch, hidden, 1, 1, norm_layer, act_layer) if expand_ratio != 1 else None
        self.depthwise = ConvNormAct(hidden, hidden, 3, stride, norm_layer, act_layer, groups=hidden)  # (N, h, H/s, W/s)
        self.project = ConvNormAct(hidden, out_ch, 1, 1, norm_layer, None)  # linear bottleneck: no activation

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
        super().__init__()
        if not width_mult > 0:
            raise CnnlabError(f"width_mult must be > 0, got {width_mult}; 1.0 is the published network")
        norm_layer, act_layer, self.default_input_size = zoo_setup(
            "mobilenet_v2", variant, in_channels, num_classes, image_size, norm, activation, dropout)
        cifar = variant == "cifar"

        ch = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [ConvNormAct(in_channels, ch, 3, 1 if cifar else 2, norm_layer, act_layer)]
        for stage, (t, c, n, s) in enumerate(INVERTED_RESIDUAL_SETTING):
            out_ch = make_divisible(c * width_mult)
            if cifar and stage == 1:
                s = 1  # CIFAR: 32 -> 32 -> 16 -> 8 -> 4 instead of 224 -> 112 -> ... -> 7
            for i in range(n):
                layers.append(InvertedResidual(ch, out_ch, s if i == 0 else 1, t, norm_layer, act_layer))
                ch = out_ch
        layers.append(ConvNormAct(ch, last, 1, 1, norm_layer, act_layer))  # (N, 1280, H/32, W/32) imagenet
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(last, num_classes))

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
