"""Layers torch lacks, usable from model configs (``conv_type: ...``).

>>> get_conv("standard")
<class 'torch.nn.modules.conv.Conv2d'>
"""

from __future__ import annotations

from torch import nn

from cnnlab.errors import CnnlabError, did_you_mean

CONV_TYPES = ("standard",)


def get_conv(conv_type: str) -> type[nn.Module]:
    """The convolution class for a config name; each takes nn.Conv2d's arguments."""
    if conv_type == "standard":
        return nn.Conv2d
    raise CnnlabError(f"unknown conv_type '{conv_type}'; {did_you_mean(conv_type, CONV_TYPES)}")
