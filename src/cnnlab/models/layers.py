"""Name-to-class factories so configs can say ``activation: gelu``.

Blocks take classes (``act_layer=nn.ReLU``), never flags; these functions turn
the strings in a config into those classes.

>>> get_activation("relu")
<class 'torch.nn.modules.activation.ReLU'>
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from cnnlab.errors import CnnlabError, did_you_mean

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
    if name not in ACTIVATIONS:
        raise CnnlabError(f"unknown activation '{name}'; {did_you_mean(name, ACTIVATIONS)}")
    return ACTIVATIONS[name]


def get_norm(name: str | None) -> Callable[[int], nn.Module]:
    """Norm-layer factory taking a channel count (``batchnorm``, ``groupnorm``, ``none``)."""
    name = "none" if name is None else name
    if name not in NORMS:
        raise CnnlabError(f"unknown norm layer '{name}'; {did_you_mean(name, NORMS)}")
    return NORMS[name]


INITS = ("default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal")


def init_weights(model: nn.Module, scheme: str = "default") -> None:
    """Re-initialise conv and linear weights with ``scheme``; biases become zero.

    ``default`` keeps PyTorch's own initialisation.
    """
    if scheme not in INITS:
        raise CnnlabError(f"unknown weight init '{scheme}'; {did_you_mean(scheme, INITS)}")
    if scheme == "default":
        return
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(module, (nn.Conv2d, nn.Linear)) or weight is None:
            continue
        if scheme == "kaiming_normal":
            nn.init.kaiming_normal_(weight, nonlinearity="relu")
        elif scheme == "kaiming_uniform":
            nn.init.kaiming_uniform_(weight, nonlinearity="relu")
        elif scheme == "xavier_normal":
            nn.init.xavier_normal_(weight)
        elif scheme == "xavier_uniform":
            nn.init.xavier_uniform_(weight)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
