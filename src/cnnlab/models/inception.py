"""A GoogLeNet-style Inception network (Szegedy et al., 2014).

An inception module runs four branches on the same input and concatenates
their channels:

    1x1  |  1x1 -> 3x3  |  1x1 -> 5x5  |  3x3 max-pool (stride 1) -> 1x1

The 1x1 convs in front of the 3x3 and 5x5 are bottlenecks: they cut the
channels the expensive kernels see (module 3a: 192 -> 16 channels before
the 5x5, a 12x saving in that branch).

Each conv is a ``ConvNormAct`` (conv without bias -> norm -> act), as in torchvision's
``googlenet`` (batch norm in place of the paper's local response norm; no
auxiliary classifiers). Unlike torchvision, the third branch really is a
5x5 conv, as in the paper.

* ``variant=imagenet`` (224x224): 7x7/2 conv, pool, 1x1, 3x3, pool, modules
  3a-3b, pool, 4a-4e, pool, 5a-5b -> 7x7x1024, avg-pool, dropout, fc.
* ``variant=cifar`` (32x32): one 3x3 conv to 192 channels and no early
  pools; the same nine modules at 32x32, 16x16 and 8x8.

>>> from cnnlab.models import create_model
>>> net = create_model("inception", num_classes=10)
>>> net.features.inception3a.out_channels
256
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Optional

import torch
from torch import nn

from cnnlab.models import checks
from cnnlab.models.base import ImageClassifier
from cnnlab.models.layers import VARIANT_IMAGE_SIZE, ActArg, ConvNormAct, NormArg, zoo_setup
from cnnlab.models.registry import register_model

# name: (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) -- Table 1 of the paper.
MODULES = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class InceptionModule(nn.Module):
    """Four branches concatenated along channels: (N, c1 + c3 + c5 + cp, H, W)."""

    def __init__(self, in_ch: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool_proj: int,
                 norm_layer, act_layer) -> None:
        super().__init__()
        self.out_channels = c1 + c3 + c5 + pool_proj
        conv = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)  # padding (k-1)/2 keeps H, W
        self.branch1 = conv(in_ch, c1, 1)
        self.branch3 = nn.Sequential(conv(in_ch, c3_reduce, 1), conv(c3_reduce, c3, 3))
        self.branch5 = nn.Sequential(conv(in_ch, c5_reduce, 1), conv(c5_reduce, c5, 5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), conv(in_ch, pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x))
        return torch.cat(branches, dim=1)


@register_model("inception")
class Inception(ImageClassifier):
    """GoogLeNet-style network; see the module docstring."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: Optional[int] = None,
        variant: str = "cifar",
        dropout: float = 0.2,
        norm: NormArg = "batchnorm",
        activation: ActArg = "relu",
    ) -> None:
        norm_layer, act_layer = zoo_setup("inception", variant, norm, activation)
        super().__init__(in_channels, num_classes, image_size, VARIANT_IMAGE_SIZE[variant])
        checks.fraction("dropout", dropout)

        conv = partial(ConvNormAct, norm_layer=norm_layer, act_layer=act_layer)
        if variant == "imagenet":
            stem = [
                ("conv1", conv(in_channels, 64, 7, stride=2)),  # H/2
                ("pool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),  # H/4
                ("conv2", conv(64, 64, 1)),
                ("conv3", conv(64, 192, 3)),
                ("pool2", nn.MaxPool2d(3, stride=2, ceil_mode=True)),  # (N, 192, H/8, W/8)
            ]
        else:
            stem = [("conv1", conv(in_channels, 192, 3))]  # (N, 192, H, W)

        def module(key: str) -> tuple[str, nn.Module]:
            return f"inception{key}", InceptionModule(*MODULES[key], norm_layer=norm_layer, act_layer=act_layer)

        pool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True) if variant == "imagenet" else nn.MaxPool2d(3, 2, 1)
        pool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True) if variant == "imagenet" else nn.MaxPool2d(3, 2, 1)
        self.features = nn.Sequential(OrderedDict([
            *stem,
            module("3a"), module("3b"),  # (N, 480, H/8, W/8) imagenet; (N, 480, H, W) cifar
            ("pool3", pool3),
            module("4a"), module("4b"), module("4c"), module("4d"), module("4e"),  # (N, 832, ...)
            ("pool4", pool4),
            module("5a"), module("5b"),  # (N, 1024, H/32, W/32) imagenet; (N, 1024, H/4, W/4) cifar
        ]))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(1024, num_classes))
        self.init_weights(conv="kaiming_normal_fan_out", linear="normal_0.01")
