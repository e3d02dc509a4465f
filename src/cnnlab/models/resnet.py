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
from typing import Callable, Optional, Union

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.base import ImageClassifier, check_input_channels
from cnnlab.models.layers import get_activation, get_norm
from cnnlab.models.registry import register_model

NormArg = Union[str, Callable[[int], nn.Module]]  # a config name or a class/factory taking channels
ActArg = Union[str, type]  # a config name or an nn.Module class

VARIANTS = ("cifar", "imagenet")


def check_variant(variant: str, name: str) -> None:
    """Every family with both stems takes ``variant=cifar|imagenet``."""
    if variant not in VARIANTS:
        raise CnnlabError(f"model '{name}' has no variant '{variant}'; use variant=cifar or variant=imagenet")


def zoo_setup(name: str, variant: str, in_channels: int, num_classes: int, image_size: Optional[int],
              norm: NormArg, activation: ActArg, dropout: float = 0.0):
    """The checks every zoo constructor makes; returns (norm_layer, act_layer, default_input_size).

    The default input is 32x32 for ``variant=cifar`` and 224x224 for ``variant=imagenet``.
    """
    check_input_channels(in_channels, num_classes)
    check_variant(variant, name)
    if not 0.0 <= dropout < 1.0:
        raise CnnlabError(f"dropout must be in [0, 1), got {dropout}")
    size = image_size or (224 if variant == "imagenet" else 32)
    return (*layer_classes(norm, activation), (in_channels, size, size))


def layer_classes(norm: NormArg, activation: ActArg) -> tuple[Callable[[int], nn.Module], type]:
    """Turn config strings into layer classes; classes passed in are used as they are.

    >>> layer_classes("batchnorm", nn.ReLU)
    (<class 'torch.nn.modules.batchnorm.BatchNorm2d'>, <class 'torch.nn.modules.activation.ReLU'>)
    """
    norm_layer = get_norm(norm) if isinstance(norm, str) or norm is None else norm
    act_layer = get_activation(activation) if isinstance(activation, str) else activation
    return norm_layer, act_layer


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


def stem(variant: str, in_channels: int, width: int, norm_layer, act_layer) -> nn.Sequential:
    """ImageNet: 7x7/2 conv + 3x3/2 max-pool (H/4). CIFAR: 3x3/1 conv, no pool (H)."""
    if variant == "imagenet":
        return nn.Sequential(OrderedDict(
            conv=nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),  # (N, w, H/2, W/2)
            bn=norm_layer(width), act=act_layer(),
            pool=nn.MaxPool2d(3, stride=2, padding=1),  # (N, w, H/4, W/4)
        ))
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False),  # (N, w, H, W)
        bn=norm_layer(width), act=act_layer(),
    ))


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
        super().__init__()
        norm_layer, act_layer, self.default_input_size = zoo_setup(
            self.name, variant, in_channels, num_classes, image_size, norm, activation)
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
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
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
