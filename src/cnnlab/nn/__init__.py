"""Layers torch lacks, usable from model configs (``conv_type: ...``).

>>> get_conv("standard")
<class 'torch.nn.modules.conv.Conv2d'>
>>> get_conv("fft").__name__
'FFTConv2d'
"""

from __future__ import annotations

from torch import nn

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.nn.dropconnect import DropConnect, DropConnectLinear
from cnnlab.nn.fft_conv import FFTConv2d, fft_conv2d
from cnnlab.nn.separable import DepthwiseSeparableConv2d, SpatiallySeparableConv2d

CONV_TYPES = ("standard", "fft", "depthwise_separable", "spatially_separable")


def get_conv(conv_type: str) -> type[nn.Module]:
    """The convolution class for a config name; each takes nn.Conv2d's arguments."""
    classes = {
        "standard": nn.Conv2d,
        "fft": FFTConv2d,
        "depthwise_separable": DepthwiseSeparableConv2d,
        "spatially_separable": SpatiallySeparableConv2d,
    }
    if conv_type not in classes:
        raise CnnlabError(f"unknown conv_type '{conv_type}'; {did_you_mean(conv_type, CONV_TYPES)}")
    return classes[conv_type]


__all__ = [
    "CONV_TYPES", "DepthwiseSeparableConv2d", "DropConnect", "DropConnectLinear", "FFTConv2d",
    "SpatiallySeparableConv2d", "fft_conv2d", "get_conv",
]
