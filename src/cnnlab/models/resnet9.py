"""ResNet-9, the small residual network behind the fast CIFAR-10 training records.

prep conv 64 -> conv 128 + pool + residual(128, 128) -> conv 256 + pool
-> conv 512 + pool + residual(512, 512) -> global max pool -> fc.
Each conv is 3x3 -> BatchNorm -> ReLU. ``width`` scales every channel count
(64 is the published network); ``logit_scale`` multiplies the logits (the
original SGD recipe used 0.125 to keep early softmax outputs soft; 1 is off).
``residual=False`` drops the two identity shortcuts (the same layers, no ``x +``), which is
how ``cnnlab ablate`` measures what the residual connections buy.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.models import checks
from cnnlab.models.base import ImageClassifier
from cnnlab.models.layers import ConvNormAct, layer_classes
from cnnlab.models.registry import register_model
from cnnlab.models.shapes import feature_shape


def conv_pool(in_ch: int, out_ch: int, norm_layer, act_layer) -> ConvNormAct:
    """3x3 conv -> norm -> act -> 2x2 max-pool: (N, out_ch, H/2, W/2)."""
    block = ConvNormAct(in_ch, out_ch, 3, norm_layer=norm_layer, act_layer=act_layer)
    block.add_module("pool", nn.MaxPool2d(2))
    return block


class Residual(nn.Module):
    """x + f(x): an identity shortcut around two conv-norm-act layers (just f(x) with ``shortcut=False``)."""

    def __init__(self, channels: int, norm_layer, act_layer, shortcut: bool = True) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.body = nn.Sequential(
            ConvNormAct(channels, channels, 3, norm_layer=norm_layer, act_layer=act_layer),
            ConvNormAct(channels, channels, 3, norm_layer=norm_layer, act_layer=act_layer),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.shortcut else self.body(x)


class Scale(nn.Module):
    """Multiply by a constant (keeps early logits small)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


@register_model("resnet9")
class ResNet9(ImageClassifier):
    """ResNet-9 for 32x32 (or larger) images; see the module docstring."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        width: int = 64,
        norm: str = "batchnorm",
        activation: str = "relu",
        logit_scale: float = 1.0,
        residual: bool = True,
    ) -> None:
        super().__init__(in_channels, num_classes, image_size, default_image_size=32)
        w = checks.positive_int("width", width)
        checks.positive_float("logit_scale", logit_scale)
        checks.flag("residual", residual)
        norm_layer, act = layer_classes(norm, activation)
        self.features = nn.Sequential(
            ConvNormAct(in_channels, w, 3, norm_layer=norm_layer, act_layer=act),  # prep: (N, w, H, W)
            conv_pool(w, 2 * w, norm_layer, act),  # (N, 2w, H/2, W/2)
            Residual(2 * w, norm_layer, act, residual),
            conv_pool(2 * w, 4 * w, norm_layer, act),  # (N, 4w, H/4, W/4)
            conv_pool(4 * w, 8 * w, norm_layer, act),  # (N, 8w, H/8, W/8)
            Residual(8 * w, norm_layer, act, residual),
        )
        feature_shape(self.features, self.default_input_size, "resnet9")  # fail early on tiny inputs
        self.head = nn.Sequential(
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8 * w, num_classes, bias=False), Scale(logit_scale)
        )
