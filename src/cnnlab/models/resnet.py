"""Residual networks (He et al., 2015): ResNet-18/34 with basic blocks, ResNet-50 with bottlenecks.

Two stems, chosen with ``variant``:

* ``imagenet`` -- 7x7 conv stride 2 + 3x3 max-pool stride 2, exactly the
  published network (torchvision's ``resnet18/34/50``: v1.5, where the
  bottleneck's stride sits on the 3x3 conv). With 1000 classes on 3x224x224
  inputs ResNet-18 has 11,689,512 parameters and 1.814 G multiply-adds.
* ``cifar`` -- one 3x3 conv stride 1 and no max-pool, so a 32x32 image keeps
  its resolution through ``layer1`` (32 -> 32 -> 16 -> 8 -> 4).

A block adds its input back (``x + f(x)``): an *identity* shortcut where the
shapes already match, a *projection* shortcut (1x1 conv with the block's
stride, then a norm) where the channels or the resolution change.

>>> from cnnlab.models import create_model
>>> net = create_model("resnet18", num_classes=10)              # CIFAR stem
>>> type(net.features.layer2[0].shortcut).__name__              # 64 -> 128, stride 2
'Sequential'
>>> type(net.features.layer2[1].shortcut).__name__              # shapes match
'Identity'
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import torch
from torch import nn

from cnnlab.models import checks
from cnnlab.models.base import ImageClassifier
from cnnlab.models.layers import VARIANT_IMAGE_SIZE, ActArg, ConvNormAct, NormArg, zoo_setup
from cnnlab.models.registry import register_model


def projection(in_ch: int, out_ch: int, stride: int, norm_layer) -> nn.Module:
    """The shortcut: identity where shapes match, else 1x1 conv (stride) + norm."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), norm_layer(out_ch))


class BasicBlock(nn.Module):
    """3x3 conv -> norm -> act -> 3x3 conv -> norm, plus the shortcut, then act (ResNet-18/34)."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int, norm_layer, act_layer) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, 3, stride=stride, padding=1, bias=False)  # (N, planes, H/s, W/s)
        self.bn1 = norm_layer(planes)
        self.act1 = act_layer()
        self.conv2 = nn.Conv2d(planes, out_ch, 3, padding=1, bias=False)
        self.bn2 = norm_layer(out_ch)
        self.shortcut = projection(in_ch, out_ch, stride, norm_layer)
        self.act2 = act_layer()

    def last_norm(self) -> nn.Module:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride here: v1.5) -> 1x1 expand x4, plus the shortcut (ResNet-50)."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int, norm_layer, act_layer) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)  # (N, planes, H, W)
        self.bn1 = norm_layer(planes)
        self.act1 = act_layer()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)  # (N, planes, H/s, W/s)
        self.bn2 = norm_layer(planes)
        self.act2 = act_layer()
        self.conv3 = nn.Conv2d(planes, out_ch, 1, bias=False)  # (N, 4*planes, H/s, W/s)
        self.bn3 = norm_layer(out_ch)
        self.shortcut = projection(in_ch, out_ch, stride, norm_layer)
        self.act3 = act_layer()

    def last_norm(self) -> nn.Module:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act3(out + self.shortcut(x))


def stem(variant: str, in_channels: int, width: int, norm_layer, act_layer) -> ConvNormAct:
    """ImageNet: 7x7/2 conv + 3x3/2 max-pool (H/4). CIFAR: 3x3/1 conv, no pool (H)."""
    if variant == "imagenet":
        block = ConvNormAct(in_channels, width, 7, stride=2, norm_layer=norm_layer, act_layer=act_layer)  # H/2
        block.add_module("pool", nn.MaxPool2d(3, stride=2, padding=1))  # (N, w, H/4, W/4)
        return block
    return ConvNormAct(in_channels, width, 3, norm_layer=norm_layer, act_layer=act_layer)  # (N, w, H, W)


class ResNet(ImageClassifier):
    """stem -> layer1..layer4 (strides 1, 2, 2, 2; widths w, 2w, 4w, 8w) -> global avg-pool -> fc.

    Subclasses set ``block`` and ``depths`` and are registered under their name.
    """

    block: type[nn.Module] = BasicBlock
    depths: tuple[int, int, int, int] = (2, 2, 2, 2)
    name = "resnet"

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: Optional[int] = None,
        variant: str = "cifar",
        width: int = 64,
        norm: NormArg = "batchnorm",
        activation: ActArg = "relu",
        zero_init_residual: bool = False,
    ) -> None:
        norm_layer, act_layer = zoo_setup(self.name, variant, norm, activation)
        super().__init__(in_channels, num_classes, image_size, VARIANT_IMAGE_SIZE[variant])
        checks.positive_int("width", width)
        checks.flag("zero_init_residual", zero_init_residual)
        block = self.block

        stages: list[tuple[str, nn.Module]] = [("stem", stem(variant, in_channels, width, norm_layer, act_layer))]
        ch = width
        for i, (depth, stride) in enumerate(zip(self.depths, (1, 2, 2, 2))):
            planes = width * 2**i
            blocks = []
            for j in range(depth):
                blocks.append(block(ch, planes, stride if j == 0 else 1, norm_layer, act_layer))
                ch = planes * block.expansion
            stages.append((f"layer{i + 1}", nn.Sequential(*blocks)))
        self.features = nn.Sequential(OrderedDict(stages))  # (N, 8w*expansion, H/32, W/32) for imagenet
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, num_classes))
        self.init_weights(conv="kaiming_normal_fan_out", norm=True)
        if zero_init_residual:  # each block starts as the identity (Goyal et al., 2017)
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)) and getattr(m.last_norm(), "weight", None) is not None:
                    nn.init.zeros_(m.last_norm().weight)


@register_model("resnet18")
class ResNet18(ResNet):
    """ResNet-18: basic blocks [2, 2, 2, 2]."""

    block, depths, name = BasicBlock, (2, 2, 2, 2), "resnet18"


@register_model("resnet34")
class ResNet34(ResNet):
    """ResNet-34: basic blocks [3, 4, 6, 3]."""

    block, depths, name = BasicBlock, (3, 4, 6, 3), "resnet34"


@register_model("resnet50")
class ResNet50(ResNet):
    """ResNet-50: bottleneck blocks [3, 4, 6, 3] (v1.5: stride on the 3x3)."""

    block, depths, name = Bottleneck, (3, 4, 6, 3), "resnet50"
