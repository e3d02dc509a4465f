"""What every model family shares: layer-class arguments, the conv-norm-act unit, channel rounding.

Blocks take classes (``act_layer=nn.ReLU``), never flags; the functions
here turn the strings in a config into those classes:

>>> get_activation("relu")
<class 'torch.nn.modules.activation.ReLU'>
>>> layer_classes("batchnorm", nn.ReLU)
(<class 'torch.nn.modules.batchnorm.BatchNorm2d'>, <class 'torch.nn.modules.activation.ReLU'>)
>>> block = ConvNormAct(3, 8, 3, stride=2)
>>> [name for name, _ in block.named_children()], block.conv.padding, block.conv.bias is None
(['conv', 'bn', 'act'], (1, 1), True)
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch
from torch import nn

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.models.checks import short

NormArg = Union[str, Callable[[int], nn.Module]]  # a config name or a class/factory taking channels
ActArg = Union[str, type]  # a config name or an nn.Module class

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


class NoNorm(nn.Identity):
    """Identity that accepts (and ignores) a channel count, standing in for a norm layer."""

    def __init__(self, num_features: int = 0, *args, **kwargs) -> None:
        super().__init__()


def _group_norm(num_features: int) -> nn.GroupNorm:
    # 8 groups when the channels allow it, else one group per channel.
    groups = 8 if num_features % 8 == 0 else num_features
    return nn.GroupNorm(groups, num_features)


NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batchnorm": nn.BatchNorm2d,
    "groupnorm": _group_norm,
    "instancenorm": lambda c: nn.InstanceNorm2d(c, affine=True),
    "none": NoNorm,
}


def get_activation(name: str) -> type[nn.Module]:
    """Activation class for a config name (``relu``, ``gelu``, ...)."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise CnnlabError(f"unknown activation {short(name)}; {did_you_mean(str(name), ACTIVATIONS)}")
    return ACTIVATIONS[name]


def get_norm(name: str | None) -> Callable[[int], nn.Module]:
    """Norm-layer factory taking a channel count (``batchnorm``, ``groupnorm``, ``none``)."""
    name = "none" if name is None else name
    if not isinstance(name, str) or name not in NORMS:
        raise CnnlabError(f"unknown norm layer {short(name)}; {did_you_mean(str(name), NORMS)}")
    return NORMS[name]


def layer_classes(norm: NormArg, activation: ActArg) -> tuple[Callable[[int], nn.Module], type]:
    """Turn config strings into layer classes; classes passed in are used as they are.

    >>> layer_classes("none", "gelu")
    (<class 'cnnlab.models.layers.NoNorm'>, <class 'torch.nn.modules.activation.GELU'>)
    """
    if norm is not None and not isinstance(norm, str) and not callable(norm):
        raise CnnlabError(f"norm must be a name ({', '.join(NORMS)}) or a class taking channels, got {short(norm)}")
    if not isinstance(activation, str) and not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise CnnlabError(f"activation must be a name ({', '.join(ACTIVATIONS)}) or an nn.Module class, "
                          f"got {short(activation)}")
    norm_layer = get_norm(norm) if isinstance(norm, str) or norm is None else norm
    act_layer = get_activation(activation) if isinstance(activation, str) else activation
    return norm_layer, act_layer


VARIANTS = ("cifar", "imagenet")
VARIANT_IMAGE_SIZE = {"cifar": 32, "imagenet": 224}


def check_variant(variant: str, name: str) -> None:
    """Every family with both stems takes ``variant=cifar|imagenet``."""
    if variant not in VARIANTS:
        raise CnnlabError(f"model '{name}' has no variant {short(variant)}; use variant=cifar or variant=imagenet")


def zoo_setup(name: str, variant: str, norm: NormArg, activation: ActArg) -> tuple[Callable[[int], nn.Module], type]:
    """The checks every zoo constructor makes beyond :class:`ImageClassifier`'s: returns (norm_layer, act_layer)."""
    check_variant(variant, name)
    return layer_classes(norm, activation)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of ``divisor``, never dropping more than 10%.

    >>> make_divisible(32 * 0.75), make_divisible(1280 * 1.0)
    (24, 1280)
    """
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class ConvNormAct(nn.Sequential):
    """conv -> norm -> [act]: the unit every family stacks.

    ``padding`` defaults to ``(kernel_size - 1) // 2`` (same size at stride 1);
    ``groups=in_ch`` makes the conv depthwise; the conv has a bias exactly when
    the norm is an identity (a norm's shift makes a bias redundant), unless
    ``bias`` says otherwise. ``act_layer=None`` gives a linear block (MobileNetV2's
    projection). The children are named ``conv``, ``bn`` (whatever the norm
    is, as torchvision names it) and ``act``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1,
                 padding: Optional[int] = None, groups: int = 1, bias: Optional[bool] = None,
                 norm_layer: Callable[[int], nn.Module] = nn.BatchNorm2d,
                 act_layer: Optional[type] = nn.ReLU) -> None:
        norm = norm_layer(out_ch)
        if bias is None:
            bias = isinstance(norm, nn.Identity)
        padding = (kernel_size - 1) // 2 if padding is None else padding
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=padding, groups=groups, bias=bias)
        self.bn = norm
        if act_layer is not None:
            self.act = act_layer()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args, **kwargs) -> None:
        # Checkpoints written before the families shared this block numbered its children (0 = conv,
        # 1 = norm) in resnet9 and MobileNetV2, and had no conv bias when there was no norm: read
        # both, a missing bias being zero, which is what no bias computed.
        for old, new in ((f"{prefix}0.", f"{prefix}conv."), (f"{prefix}1.", f"{prefix}bn.")):
            for key in [k for k in state_dict if k.startswith(old)]:
                state_dict[new + key[len(old):]] = state_dict.pop(key)
        weight, bias = f"{prefix}conv.weight", f"{prefix}conv.bias"
        if self.conv.bias is not None and weight in state_dict and bias not in state_dict:
            state_dict[bias] = torch.zeros_like(self.conv.bias)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
