"""The airbench network (Keller Jordan's CIFAR-10 speed-run net), built from ordinary layers.

whiten conv 2x2 (C -> 2*C*4 = 24 filters, no padding: 32 -> 31) -> GELU
-> 3 conv groups, each: conv 3x3 -> max-pool 2 -> BN -> GELU -> conv 3x3 -> BN -> GELU
   (widths 64, 256, 256: 31 -> 15 -> 7 -> 3)
-> global max pool -> linear (no bias) -> x logit_scale (1/9).

The first conv is meant to be set from the training images' patch statistics and frozen
(``train.whitening=frozen``, see :mod:`cnnlab.train.whitening`): its 24 filters are the 12
eigenvectors of the 2x2x3 patch covariance and their negatives. Batch norm has a frozen scale
(weight fixed at 1, only the shift trains: ``bn_frozen_scale``) and a fast-moving average
(``bn_momentum=0.4`` in torch's convention, airbench's 0.6). Every 3x3 conv starts as a partial
identity (``identity_init``, airbench's Dirac init: see :func:`identity_init_`). ``widths`` scales the network: the
speed-run net is (64, 256, 256), about 0.15 GMACs per 32x32 image.

>>> import torch
>>> net = AirbenchNet(widths=[16, 32, 32])
>>> net(torch.randn(2, 3, 32, 32)).shape
torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models import checks
from cnnlab.models.base import ImageClassifier
from cnnlab.models.layers import get_activation
from cnnlab.models.registry import register_model
from cnnlab.models.resnet9 import Scale
from cnnlab.models.shapes import feature_shape


class FrozenScaleBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose scale stays 1 (not trained) unless ``frozen_scale=False``."""

    def __init__(self, channels: int, momentum: float = 0.4, eps: float = 1e-12, frozen_scale: bool = True) -> None:
        super().__init__(channels, momentum=momentum, eps=eps)
        self.weight.requires_grad_(not frozen_scale)


def identity_init_(conv: nn.Conv2d) -> nn.Conv2d:
    """Make the first ``min(out, in)`` filters of a 3x3 conv pass their input channel through unchanged.

    Filter ``i`` gets a 1 at the centre of input channel ``i`` and zeros elsewhere (a Dirac delta);
    the other filters keep their random init. A freshly built deep net then starts close to a
    shallower one - the signal reaches the head undistorted - which airbench found trains faster.

    >>> conv = identity_init_(nn.Conv2d(2, 3, 3, padding=1, bias=False))
    >>> x = torch.randn(1, 2, 4, 4)
    >>> torch.allclose(conv(x)[:, :2], x)
    True
    """
    with torch.no_grad():
        n = min(conv.out_channels, conv.in_channels)
        nn.init.dirac_(conv.weight[:n])  # (n, in, 3, 3): filter i copies channel i
    return conv


class ConvGroup(nn.Sequential):
    """conv 3x3 -> max-pool 2 -> BN -> act -> conv 3x3 -> BN -> act: (N, out, H/2, W/2)."""

    def __init__(self, in_ch: int, out_ch: int, act_layer, bn_momentum: float, frozen_scale: bool,
                 identity_init: bool = True) -> None:
        convs = [nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)]
        if identity_init:
            for conv in convs:
                identity_init_(conv)
        super().__init__(
            convs[0],
            nn.MaxPool2d(2),
            FrozenScaleBatchNorm(out_ch, bn_momentum, frozen_scale=frozen_scale),
            act_layer(),
            convs[1],
            FrozenScaleBatchNorm(out_ch, bn_momentum, frozen_scale=frozen_scale),
            act_layer(),
        )


@register_model("airbench")
class AirbenchNet(ImageClassifier):
    """See the module docstring."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        widths: list[int] = (64, 256, 256),
        whiten_kernel: int = 2,
        whiten_padding: int = 0,
        activation: str = "gelu",
        bn_momentum: float = 0.4,
        bn_frozen_scale: bool = True,
        logit_scale: float = 1 / 9,
        identity_init: bool = True,
    ) -> None:
        super().__init__(in_channels, num_classes, image_size, default_image_size=32)
        widths = checks.int_or_list("widths", widths if isinstance(widths, int) else list(widths), 3)
        k = checks.positive_int("whiten_kernel", whiten_kernel, maximum=7)
        pad = checks.positive_int("whiten_padding", whiten_padding + 1, maximum=k) - 1  # 0..k-1
        # padding 0 is airbench's (32 -> 31 -> 15 -> 7 -> 3); 1 keeps power-of-two strides (33 -> 16 -> 8 -> 4),
        # which a detector head on these features needs
        checks.positive_float("logit_scale", logit_scale)
        checks.flag("bn_frozen_scale", bn_frozen_scale)
        checks.flag("identity_init", identity_init)
        if not 0.0 < bn_momentum <= 1.0:
            raise CnnlabError(f"bn_momentum must be in (0, 1], got {bn_momentum}")
        act = get_activation(activation)
        whiten = 2 * in_channels * k * k  # eigenvectors of the k x k x C patch covariance, both signs
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, whiten, k, padding=pad, bias=True),  # (N, 24, H-k+1+2p, W-k+1+2p)
            act(),
            ConvGroup(whiten, widths[0], act, bn_momentum, bn_frozen_scale, identity_init),  # (N, w0, (H-1)/2, ..)
            ConvGroup(widths[0], widths[1], act, bn_momentum, bn_frozen_scale, identity_init),
            ConvGroup(widths[1], widths[2], act, bn_momentum, bn_frozen_scale, identity_init),
        )
        feature_shape(self.features, self.default_input_size, "airbench")  # fail early on tiny inputs
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                                  nn.Linear(widths[2], num_classes, bias=False), Scale(logit_scale))
