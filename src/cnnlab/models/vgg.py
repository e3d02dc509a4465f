"""VGG-11 and VGG-16 (Simonyan & Zisserman, 2014), with optional batch norm.

Stacks of 3x3 convs (padding 1) separated by 2x2 max-pools: configurations A
(VGG-11) and D (VGG-16) of the paper. ``norm="none"`` is the paper's network
(``norm="batchnorm"`` is torchvision's ``vgg*_bn``; the conv biases are kept
either way, as there).

* ``variant=imagenet`` -- adaptive avg-pool to 7x7, then fc 4096 -> fc 4096 ->
  fc classes with dropout: VGG-16 has 138,357,544 parameters and 15.47 G
  multiply-adds at 3x224x224 with 1000 classes.
* ``variant=cifar`` -- the five pools take 32x32 to 1x1x512; a global
  avg-pool and one fc layer follow (the usual CIFAR head: VGG-16 has 14.7 M
  parameters in all, where the ImageNet head's three fc layers alone hold 123.6 M).

>>> from cnnlab.models import create_model
>>> net = create_model("vgg11", num_classes=10)                 # CIFAR form: batch norm by default
>>> sum(isinstance(m, nn.Conv2d) for m in net.features.modules()), sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())
(8, 8)
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from torch import nn

from cnnlab.models import checks
from cnnlab.models.base import ImageClassifier
from cnnlab.models.layers import VARIANT_IMAGE_SIZE, ActArg, NormArg, zoo_setup
from cnnlab.models.registry import register_model

# Conv widths per layer, "M" a 2x2 max-pool (Table 1 of the paper).
CONFIGS: dict[str, tuple[Union[int, str], ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


def vgg_features(config: Sequence[Union[int, str]], in_channels: int, norm_layer, act_layer) -> nn.Sequential:
    """conv3x3 -> [norm] -> act for each width; a 2x2 max-pool for each "M" (halves H and W)."""
    layers: list[nn.Module] = []
    ch = in_channels
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))  # (N, C, H/2, W/2)
            continue
        layers.append(nn.Conv2d(ch, int(item), 3, padding=1))
        norm = norm_layer(int(item))
        if not isinstance(norm, nn.Identity):  # flat, as torchvision's vgg: no placeholder for "none"
            layers.append(norm)
        layers.append(act_layer())
        ch = int(item)
    return nn.Sequential(*layers)


class VGG(ImageClassifier):
    """features (convs and pools) -> head (CIFAR: avg-pool + fc; ImageNet: 7x7 pool + 3 fc).

    Subclasses set ``name`` (a key of :data:`CONFIGS`) and are registered under it.
    """

    name = "vgg11"

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: Optional[int] = None,
        variant: str = "cifar",
        norm: Optional[NormArg] = None,
        activation: ActArg = "relu",
        dropout: float = 0.5,
    ) -> None:
        if norm is None:  # the paper's plain network for ImageNet; batch norm to train on CIFAR
            norm = "none" if variant == "imagenet" else "batchnorm"
        norm_layer, act_layer = zoo_setup(self.name, variant, norm, activation)
        super().__init__(in_channels, num_classes, image_size, VARIANT_IMAGE_SIZE[variant])
        checks.fraction("dropout", dropout)
        self.features = vgg_features(CONFIGS[self.name], in_channels, norm_layer, act_layer)  # (N, 512, H/32, W/32)
        if variant == "imagenet":
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d(7), nn.Flatten(),  # (N, 512*7*7)
                nn.Linear(512 * 7 * 7, 4096), act_layer(), nn.Dropout(dropout),
                nn.Linear(4096, 4096), act_layer(), nn.Dropout(dropout),
                nn.Linear(4096, num_classes),
            )
        else:
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))
        self.init_weights(conv="kaiming_normal_fan_out", linear="normal_0.01")


@register_model("vgg11")
class VGG11(VGG):
    """VGG-11 (configuration A: 8 convs, 3 fc in the ImageNet form)."""

    name = "vgg11"


@register_model("vgg16")
class VGG16(VGG):
    """VGG-16 (configuration D: 13 convs, 3 fc in the ImageNet form)."""

    name = "vgg16"
