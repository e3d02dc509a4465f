"""EfficientNet-Lite0/1/2 (Tan & Le, 2019; the "Lite" edge variants of 2020).

EfficientNet-Lite is MobileNetV2's inverted residual (1x1 expand -> depthwise
kxk -> 1x1 linear projection, plus the input where the shapes match) with the
three changes Google made for phones: no squeeze-and-excitation, ReLU6 instead
of swish, and a stem (32 channels) and head (1280 channels) that stay fixed
when the network is scaled. A bigger member multiplies the widths by ``w``
(rounded to multiples of 8) and the repeats of the middle stages by ``d``
(rounded up), and is trained at a larger resolution:

=================== ===== ===== ====== ======= ================================
name                w     d     size   dropout published (1000 classes, at size)
=================== ===== ===== ====== ======= ================================
efficientnet_lite0  1.0   1.0   224    0.2     4.65 M parameters, 0.41 G MACs
efficientnet_lite1  1.0   1.1   240    0.2     5.42 M parameters, 0.63 G MACs
efficientnet_lite2  1.1   1.2   260    0.3     6.09 M parameters, 0.90 G MACs
=================== ===== ===== ====== ======= ================================

The strided convs pad as TensorFlow's ``SAME`` does -- the network was
trained in TensorFlow -- which is *not* PyTorch's symmetric padding: on an even
side, SAME puts no zero row on top and one below (k=3), torch one on each
side, and the weights only give ImageNet's answers on SAME's grid.
:class:`SameConv2d` pads explicitly only there (the 5 strided convs on even
sides); every other conv uses the conv's own symmetric padding, which for
odd kernels at stride 1 *is* SAME. Batch norm uses TensorFlow's
``eps=1e-3`` (momentum 0.01 in PyTorch's convention, 0.99 in TensorFlow's).

ImageNet weights (``efficientnet_lite0.in1k``) are in
:mod:`cnnlab.models.pretrained`.

>>> from cnnlab.models import create_model
>>> net = create_model("efficientnet_lite0", num_classes=1000)
>>> sum(p.numel() for p in net.parameters())
4652008
>>> [len(getattr(net.features, f"stage{i}")) for i in range(1, 8)]  # repeats: 1, 2, 2, 3, 3, 4, 1
[1, 2, 2, 3, 3, 4, 1]
>>> net.features.stage2[0].depthwise.conv.stride, net.features.stage2[1].use_residual
((2, 2), True)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import checks
from cnnlab.models.base import ImageClassifier
from cnnlab.models.layers import ActArg, NormArg, check_variant, layer_classes, make_divisible
from cnnlab.models.registry import register_model

# (expansion t, kernel k, first stride s, output channels c, repeats n) per stage, for w = d = 1
# (efficientnet_lite_builder.py's block strings r1_k3_s11_e1_i32_o16 ... r1_k3_s11_e6_i192_o320).
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM, HEAD = 32, 1280  # fixed in every Lite member
# name -> (width w, depth d, training resolution, dropout before the classifier)
SCALING = {
    "efficientnet_lite0": (1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": (1.1, 1.2, 260, 0.3),
}
SMALL_IMAGES = 64  # below this side the default variant is cifar (the published strides would end at 1x1)
TF_BATCHNORM = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)  # TensorFlow's eps; its decay 0.99


class SameConv2d(nn.Conv2d):
    """A bias-free conv padded as TensorFlow's ``SAME`` (output side ``ceil(side / stride)``), stride 1 or 2.

    Stride 1 with an odd kernel: symmetric ``k // 2`` zeros, which is SAME, done by the conv itself.
    Stride 2: SAME pads ``k - 1`` zeros on an odd side (``k//2`` each: again the conv's own padding)
    but ``k - 2`` on an even side, ``k//2 - 1`` before and ``k//2`` after -- a grid one pixel off
    torch's. Rather than copy the whole input into a padded tensor, the kernel grows by one zero tap
    at the start of that axis and the conv pads ``k//2`` on both sides: its windows start one pixel
    earlier, on a zero weight, so each output sums exactly the pixels SAME's window holds. Only the
    small weight is copied, and the gradient reaches only the real taps.

    >>> conv = SameConv2d(1, 1, 3, stride=2)
    >>> conv(torch.zeros(1, 1, 224, 224)).shape[-2:], conv(torch.zeros(1, 1, 15, 15)).shape[-2:]
    (torch.Size([112, 112]), torch.Size([8, 8]))
    >>> same_pads(224, 3), same_pads(15, 5)                   # (before, after) along one side
    ((0, 1), (2, 2))
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1) -> None:
        if stride not in (1, 2) or kernel_size % 2 == 0:
            raise CnnlabError(f"SameConv2d takes an odd kernel and stride 1 or 2, got k={kernel_size} s={stride}")
        super().__init__(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups,
                         bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        # an even side needs SAME's window one pixel later than the conv's own: one zero tap before it
        top, left = 1 - x.shape[-2] % 2, 1 - x.shape[-1] % 2
        if torch.onnx.is_in_onnx_export():  # the exporter needs a kernel of known shape: pad the input instead
            return self.conv_padded_input(x)
        weight = F.pad(self.weight, (left, 0, top, 0)) if top or left else self.weight  # (out, in/groups, kh, kw)
        return F.conv2d(x, weight, self.bias, 2, self.padding, 1, self.groups)  # bias: None unless BN was folded

    def conv_padded_input(self, x: torch.Tensor) -> torch.Tensor:
        """The stride-2 SAME conv done the plain way: SAME's zeros copied into the input, an unpadded conv."""
        (top, bottom), (left, right) = same_pads(x.shape[-2], self.kernel_size[0]), same_pads(x.shape[-1],
                                                                                              self.kernel_size[1])
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias, 2, 0, 1, self.groups)


def same_pads(side: int, kernel: int, stride: int = 2) -> tuple[int, int]:
    """TensorFlow SAME's (before, after) zeros along a side: the extra one goes after."""
    total = max((-(-side // stride) - 1) * stride + kernel - side, 0)
    return total // 2, total - total // 2


class ConvBnAct(nn.Sequential):
    """SAME conv -> norm -> [act]; children ``conv``, ``bn``, ``act`` (``act_layer=None``: linear)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 norm_layer=TF_BATCHNORM, act_layer: Optional[type] = nn.ReLU6) -> None:
        super().__init__()
        self.conv = SameConv2d(in_ch, out_ch, kernel_size, stride, groups)
        self.bn = norm_layer(out_ch)
        if act_layer is not None:
            self.act = act_layer()


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a whole residual branch per sample with probability ``p``.

    The kept branches are scaled by ``1 / (1 - p)``; evaluation is the identity.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) >= self.p  # (N, 1, 1, 1)
        return x * keep / (1.0 - self.p)


class MBConv(nn.Module):
    """1x1 expand (x t, skipped for t = 1) -> kxk depthwise (stride) -> 1x1 linear projection, plus x."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, expand_ratio: int,
                 norm_layer, act_layer, drop_path: float = 0.0) -> None:
        super().__init__()
        hidden = in_ch * expand_ratio
        self.use_residual = stride == 1 and in_ch == out_ch
        conv = partial(ConvBnAct, norm_layer=norm_layer, act_layer=act_layer)
        self.expand = conv(in_ch, hidden, 1) if expand_ratio != 1 else None  # (N, t*C, H, W)
        self.depthwise = conv(hidden, hidden, kernel_size, stride, groups=hidden)  # (N, t*C, H/s, W/s)
        self.project = conv(hidden, out_ch, 1, act_layer=None)  # (N, out, H/s, W/s), no activation
        self.drop_path = DropPath(drop_path) if self.use_residual and drop_path > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(out))
        if not self.use_residual:
            return out
        return x + (self.drop_path(out) if self.drop_path is not None else out)


def stage_plan(width: float, depth: float) -> list[tuple[int, int, int, int, int]]:
    """The stages of a member: (t, k, s, channels, repeats) with Lite's scaling rules applied.

    >>> [c for _, _, _, c, _ in stage_plan(1.1, 1.2)]      # lite2: widths x 1.1, rounded to 8
    [16, 24, 48, 88, 120, 208, 352]
    >>> [n for *_, n in stage_plan(1.1, 1.2)]              # first and last stages never repeat more
    [1, 3, 3, 4, 4, 5, 1]
    """
    plan = []
    for i, (t, k, s, c, n) in enumerate(STAGES):
        repeats = n if i in (0, len(STAGES) - 1) else int(math.ceil(depth * n))
        plan.append((t, k, s, make_divisible(c * width), repeats))
    return plan


class EfficientNetLite(ImageClassifier):
    """stem (3x3/2) -> stage1..stage7 of MBConv blocks -> 1x1 conv to 1280 -> pool, dropout, fc.

    ``variant=imagenet`` has the published strides; ``variant=cifar`` keeps the stem and stage2 at
    stride 1, as the zoo's MobileNetV2 does, so 32x32 images end at 4x4 (same tensors, so ImageNet
    weights load into both); the default is cifar below 64 px, else imagenet.
    ``features`` ends with the 1280-channel 1x1 conv (N, 1280, H/32, W/32); ``head`` is
    global average pooling, dropout and the classifier. ``drop_path`` is the stochastic-depth
    rate of the last block (block i of B drops with ``drop_path * i / B``; 0.2 in the
    published training, 0 by default so a forward is deterministic).
    Subclasses set ``name``; :data:`SCALING` gives their width, depth, size and dropout.
    """

    name = "efficientnet_lite0"

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        image_size: Optional[int] = None,
        variant: Optional[str] = None,
        dropout: Optional[float] = None,
        drop_path: float = 0.0,
        norm: NormArg = "batchnorm",
        activation: ActArg = "relu6",
    ) -> None:
        width, depth, size, default_dropout = SCALING[self.name]
        norm_layer, act_layer = layer_classes(TF_BATCHNORM if norm == "batchnorm" else norm, activation)
        super().__init__(in_channels, num_classes, image_size, size)
        if variant is None:
            variant = "cifar" if self.image_size < SMALL_IMAGES else "imagenet"
        check_variant(variant, self.name)
        cifar = variant == "cifar"
        dropout = default_dropout if dropout is None else dropout
        checks.fraction("dropout", dropout)
        checks.fraction("drop_path", drop_path)
        conv = partial(ConvBnAct, norm_layer=norm_layer, act_layer=act_layer)

        layers: list[tuple[str, nn.Module]] = [("stem", conv(in_channels, STEM, 3, stride=1 if cifar else 2))]
        plan = stage_plan(width, depth)
        total, index, ch = sum(n for *_, n in plan), 0, STEM
        for i, (t, k, s, out_ch, n) in enumerate(plan, start=1):
            s = 1 if cifar and i == 2 else s  # CIFAR: 32 -> 32 -> 16 -> 8 -> 4 rather than 32 -> ... -> 1
            blocks = []
            for j in range(n):
                blocks.append(MBConv(ch, out_ch, k, s if j == 0 else 1, t, norm_layer, act_layer,
                                     drop_path * index / total))
                ch, index = out_ch, index + 1
            layers.append((f"stage{i}", nn.Sequential(*blocks)))
        layers.append(("head_conv", conv(ch, HEAD, 1)))  # (N, 1280, H/32, W/32)
        self.features = nn.Sequential(OrderedDict(layers))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(HEAD, num_classes))  # (N, classes)
        self.init_weights(conv="kaiming_normal_fan_out", linear="normal_0.01", norm=True)


@register_model("efficientnet_lite0")
class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0: w = d = 1.0 at 224 px, 4.65 M parameters (ImageNet weights: efficientnet_lite0.in1k)."""

    name = "efficientnet_lite0"


@register_model("efficientnet_lite1")
class EfficientNetLite1(EfficientNetLite):
    """EfficientNet-Lite1: w = 1.0, d = 1.1 at 240 px, 5.42 M parameters (weights: efficientnet_lite1.in1k)."""

    name = "efficientnet_lite1"


@register_model("efficientnet_lite2")
class EfficientNetLite2(EfficientNetLite):
    """EfficientNet-Lite2: w = 1.1, d = 1.2 at 260 px, 6.09 M parameters (weights: efficientnet_lite2.in1k)."""

    name = "efficientnet_lite2"
