"""Separable convolutions as ``nn.Conv2d`` drop-ins (same constructor arguments).

>>> import torch
>>> DepthwiseSeparableConv2d(16, 32, 3, padding=1)(torch.zeros(1, 16, 8, 8)).shape
torch.Size([1, 32, 8, 8])
>>> SpatiallySeparableConv2d(16, 32, 5, padding="same")(torch.zeros(1, 16, 8, 8)).shape
torch.Size([1, 32, 8, 8])
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.geometry import as_pair


def _pair(value, name: str):
    return (value, value) if isinstance(value, str) else as_pair(value, name)


class DepthwiseSeparableConv2d(nn.Module):
    """Depthwise k×k conv (one filter per channel) then a pointwise 1×1 conv (MobileNet's block).

    About 1/N + 1/k² of the multiplications of a standard conv with N outputs.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation,
                                   groups=in_channels, bias=False, padding_mode=padding_mode, **factory)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=bias, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SpatiallySeparableConv2d(nn.Module):
    """A kh×1 conv (C -> O) then a 1×kw depthwise conv: every kernel is rank 1 (column × row).

    Stride, padding and dilation split by axis between the two passes.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        (kh, kw), (sh, sw), (dh, dw) = _pair(kernel_size, "kernel_size"), _pair(stride, "stride"), _pair(
            dilation, "dilation")
        ph, pw = _pair(padding, "padding")
        if isinstance(kh, str):
            raise CnnlabError(f"kernel_size must be an int or a pair, got {kernel_size!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.vertical = nn.Conv2d(in_channels, out_channels, (kh, 1), (sh, 1), ph if isinstance(ph, str) else (ph, 0),
                                  (dh, 1), groups=groups, bias=False, padding_mode=padding_mode, **factory)
        self.horizontal = nn.Conv2d(out_channels, out_channels, (1, kw), (1, sw),
                                    pw if isinstance(pw, str) else (0, pw), (1, dw), groups=out_channels, bias=bias,
                                    padding_mode=padding_mode, **factory)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.horizontal(self.vertical(x))

    def effective_weight(self) -> torch.Tensor:
        """The (O, C/groups, kh, kw) rank-1 kernels this layer applies."""
        col = self.vertical.weight[..., 0]  # (O, C/G, kh)
        row = self.horizontal.weight[:, 0, 0, :]  # (O, kw)
        return col[..., :, None] * row[:, None, None, :]
