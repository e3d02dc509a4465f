"""Architectures beyond the zoo: ``tv:NAME`` (torchvision) and ``timm:NAME`` (timm, optional).

Each is rebuilt behind the same interface as cnnlab's own models -- ``features``
(images -> maps) and ``head`` (pool -> flatten -> classifier) -- so training,
freezing, cached features and export treat them like any zoo model. The
torchvision modules are re-parented, not copied: ``tv:resnet18``'s
``features.stem.conv1.weight`` is torchvision's ``conv1.weight``, so a
torchvision state dict loads by name (:mod:`cnnlab.models.weights` matches a
key by its longest dotted suffix).

>>> from cnnlab.models import create_model
>>> net = create_model("tv:resnet18", num_classes=10)
>>> [name for name, _ in net.features.named_children()]
['stem', 'layer1', 'layer2', 'layer3', 'layer4']

Nothing is downloaded here: the networks start from random weights, and
``model.weights=PATH`` (or the explicit ``model.weights=download``) fills them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Optional

import torch
from torch import nn

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.models.base import ImageClassifier

# The input side each family was trained at (torchvision's transforms use these).
DEFAULT_SIZES = {"inception_v3": 299}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RepeatChannels(nn.Module):
    """(N, 1, H, W) -> (N, 3, H, W): greyscale images fed to an RGB backbone."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _split_torchvision(net: nn.Module, arch: str) -> tuple[nn.Sequential, nn.Sequential]:
    """(features, head) made of ``net``'s own modules, in its forward order."""
    kind = type(net).__name__
    children = OrderedDict(net.named_children())
    if "layer4" in children and "fc" in children:  # ResNet, ResNeXt, Wide ResNet
        stem = nn.Sequential(OrderedDict((k, children[k]) for k in ("conv1", "bn1", "relu", "maxpool")))
        features = nn.Sequential(OrderedDict([("stem", stem)] + [(f"layer{i}", children[f"layer{i}"])
                                                                 for i in range(1, 5)]))
        head = nn.Sequential(OrderedDict(avgpool=children["avgpool"], flatten=nn.Flatten(1), fc=children["fc"]))
        return features, head
    if kind == "Inception3":  # every child up to Mixed_7c, in order (the auxiliary classifier is off)
        skip = {"AuxLogits", "avgpool", "dropout", "fc"}
        features = nn.Sequential(OrderedDict((k, m) for k, m in children.items() if k not in skip and m is not None))
        head = nn.Sequential(OrderedDict(avgpool=children["avgpool"], dropout=children["dropout"],
                                         flatten=nn.Flatten(1), fc=children["fc"]))
        return features, head
    if "features" in children and "classifier" in children:
        parts: list[tuple[str, nn.Module]] = []
        if kind == "DenseNet":  # its forward applies a ReLU after the features
            parts.append(("relu", nn.ReLU()))
        parts.append(("avgpool", children.get("avgpool", nn.AdaptiveAvgPool2d(1))))
        if kind != "ConvNeXt":  # ConvNeXt's classifier starts with LayerNorm2d on the 4-D maps and flattens itself
            parts.append(("flatten", nn.Flatten(1)))
        parts.append(("classifier", children["classifier"]))
        return children["features"], nn.Sequential(OrderedDict(parts))
    raise CnnlabError(f"tv:{arch} ({kind}) has no features/classifier split cnnlab knows; supported families: "
                      "ResNet/ResNeXt/Wide ResNet, Inception v3, and networks with .features + .classifier "
                      "(VGG, EfficientNet, MobileNet, ConvNeXt, DenseNet, AlexNet)")


class TorchvisionClassifier(ImageClassifier):
    """A torchvision classification network as ``features`` + ``head``."""

    def __init__(self, arch: str, num_classes: int = 1000, in_channels: int = 3,
                 image_size: Optional[int] = None, **kwargs: Any) -> None:
        import torchvision

        super().__init__(in_channels, num_classes, image_size, DEFAULT_SIZES.get(arch, 224))
        if in_channels not in (1, 3):
            raise CnnlabError(f"tv:{arch} takes RGB images; in_channels must be 1 (repeated to 3) or 3, "
                              f"got {in_channels}")
        if arch == "inception_v3":
            kwargs.setdefault("aux_logits", False)
            kwargs.setdefault("init_weights", True)
        net = torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
        features, head = _split_torchvision(net, arch)
        if in_channels == 1:
            features = nn.Sequential(OrderedDict([("to_rgb", RepeatChannels()), *features.named_children()]))
        self.arch = arch
        self.features = features
        self.head = head
        self.default_normalization = (IMAGENET_MEAN, IMAGENET_STD)


def torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def torchvision_constructor(arch: str) -> Callable[..., Any]:
    """A constructor ``(num_classes, in_channels, image_size, **options)`` for ``tv:ARCH``."""
    names = torchvision_names()
    if arch not in names:
        raise CnnlabError(f"torchvision has no classification model '{arch}'; {did_you_mean(arch, names)}")

    def build(num_classes: int = 1000, in_channels: int = 3, image_size: Optional[int] = None,
              **options: Any) -> TorchvisionClassifier:
        return TorchvisionClassifier(arch, num_classes, in_channels, image_size, **options)

    build.__doc__ = f"torchvision's {arch} (random weights; model.weights=PATH loads a state dict)"
    return build


class TimmClassifier(ImageClassifier):
    """A timm network: ``features`` runs ``forward_features``, ``head`` runs ``forward_head``.

    Its parameters all live under ``features.net`` (timm's model, classifier included), so it is
    one stage: freeze it by name patterns (``model.freeze=[features.net.layer1.*]``), not by ``freeze_k``.
    """

    stages_supported = False

    def __init__(self, arch: str, num_classes: int = 1000, in_channels: int = 3,
                 image_size: Optional[int] = None, **kwargs: Any) -> None:
        timm = import_timm()
        super().__init__(in_channels, num_classes, image_size, 224)
        net = timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_channels, **kwargs)
        self.arch = arch
        self.features = _TimmPart(net, "forward_features")
        self.head = _TimmHead(net)

    def classifier_layer(self) -> nn.Module:
        """timm's own classifier (it lives under ``features.net``, where the parameters are registered)."""
        return self.head.net.get_classifier()

    def reset_head(self, num_classes: int) -> "TimmClassifier":
        self.head.net.reset_classifier(num_classes)
        return self

    @property
    def num_classes(self) -> int:
        return self.head.net.num_classes


class _TimmPart(nn.Module):
    def __init__(self, net: nn.Module, method: str) -> None:
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.net, self.method)(x)


class _TimmHead(nn.Module):
    """Runs the timm model's own head; holds no parameters of its own (they live under ``features.net``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "net", net)  # not registered twice: the parameters belong to ``features``

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(x)


def import_timm():
    """The timm module, or the one line naming the extra that installs it."""
    try:
        import timm
    except ImportError:
        raise CnnlabError("timm:NAME models need the optional timm package: pip install 'cnnlab[timm]'") from None
    return timm


def timm_constructor(arch: str) -> Callable[..., Any]:
    timm = import_timm()
    names = timm.list_models()
    if arch not in names:
        raise CnnlabError(f"timm has no model '{arch}'; {did_you_mean(arch, names)}")

    def build(num_classes: int = 1000, in_channels: int = 3, image_size: Optional[int] = None,
              **options: Any) -> TimmClassifier:
        return TimmClassifier(arch, num_classes, in_channels, image_size, **options)

    build.__doc__ = f"timm's {arch} (random weights; model.weights=PATH loads a state dict)"
    return build


def external_constructor(name: str) -> Callable[..., Any] | None:
    """The constructor for ``tv:NAME`` / ``timm:NAME``, or None for any other name."""
    if name.startswith("tv:"):
        return torchvision_constructor(name[3:])
    if name.startswith("timm:"):
        return timm_constructor(name[5:])
    return None
