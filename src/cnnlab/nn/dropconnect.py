"""DropConnect (Wan et al., 2013): drop *weights*, not activations, while training.

Wraps an ``nn.Linear`` or ``nn.Conv2d``. In training each weight is zeroed with
probability ``p`` (a fresh mask per forward call, shared by the batch) and
the kept ones are scaled by 1/(1-p); in evaluation the layer is unchanged.

>>> import torch
>>> layer = DropConnect(torch.nn.Linear(4, 3), p=0.5)
>>> layer.eval()(torch.ones(2, 4)).shape
torch.Size([2, 3])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError


class DropConnect(nn.Module):
    """``DropConnect(nn.Linear(...), p)`` or ``DropConnect(nn.Conv2d(...), p)``."""

    def __init__(self, layer: nn.Module, p: float = 0.5) -> None:
        super().__init__()
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            raise CnnlabError(f"DropConnect wraps nn.Linear or nn.Conv2d, got {type(layer).__name__}")
        if not 0.0 <= p < 1.0:
            raise CnnlabError(f"DropConnect probability must be in [0, 1), got {p}")
        self.layer, self.p = layer, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.layer.weight
        if self.training and self.p > 0:
            keep = torch.rand_like(weight) >= self.p
            weight = weight * keep / (1.0 - self.p)
        if isinstance(self.layer, nn.Linear):
            return F.linear(x, weight, self.layer.bias)
        return self.layer._conv_forward(x, weight, self.layer.bias)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropConnectLinear(nn.Linear):
    """An ``nn.Linear`` with DropConnect built in: the models' ``dropconnect=P`` option.

    Being an ``nn.Linear`` (same parameters, same state-dict keys), it is counted, frozen,
    exported and replaced like any dense layer; only training differs. In training every
    weight is zeroed with probability ``p`` (one mask per forward, drawn from torch's RNG, shared
    by the batch) and the kept ones are scaled by 1/(1-p); the bias is never dropped.

    >>> import torch
    >>> layer = DropConnectLinear(4, 3, p=0.5)
    >>> x = torch.ones(2, 4)
    >>> torch.equal(layer.eval()(x), torch.nn.functional.linear(x, layer.weight, layer.bias))
    True
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, p: float = 0.5) -> None:
        if not 0.0 <= p < 1.0:
            raise CnnlabError(f"dropconnect must be a number in [0, 1), got {p}")
        super().__init__(in_features, out_features, bias)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if self.training and self.p > 0:
            keep = torch.rand_like(weight) >= self.p  # (out, in)
            weight = weight * keep / (1.0 - self.p)
        return F.linear(x, weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dropconnect={self.p}"
