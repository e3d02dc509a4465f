"""Input adaptation: bring a dataset to what pretrained weights were trained on.

Weights that carry their training input (a cnnlab run directory or checkpoint records
``input_size``, ``mean`` and ``std``) fix the channels, the image size and the
normalisation the network expects. A dataset that differs is converted once,
before training: greyscale repeated to 3 channels (or colour to luminance), images
resized with an antialiased bilinear filter, and the weights' own mean/std used
instead of the new data's. Weights without that record (a torchvision ``.pth``, a
safetensors file) leave the data as it is.

>>> import torch
>>> digits = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
>>> adapt_images(digits, (3, 32, 32)).shape
torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from cnnlab.errors import CnnlabError
from cnnlab.models.external import IMAGENET_MEAN, IMAGENET_STD
from cnnlab.models.online import published
from cnnlab.models.pretrained import TAGS, table_cfg as pretrained_cfg_of
from cnnlab.models.weights import DOWNLOAD, TORCHVISION_TWINS, read_weights

LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow's "L" mode


def adapt_images(x: torch.Tensor, size: tuple[int, int, int], chunk: int = 4096) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, c, h, w) for ``size`` = (c, h, w); unchanged when it already fits.

    Converted in chunks so a 60,000-image dataset never needs a float copy of itself.
    """
    c, h, w = size
    if tuple(x.shape[1:]) == (c, h, w):
        return x
    if c not in (1, 3) or x.shape[1] not in (1, 3):
        raise CnnlabError(f"cannot adapt {x.shape[1]}-channel images to {c} channels; only 1 and 3 convert")
    out = torch.empty((len(x), c, h, w), dtype=torch.uint8)
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk].float()  # (n, C, H, W) on the 0..255 scale
        if part.shape[1] == 1 and c == 3:
            part = part.expand(-1, 3, -1, -1)
        elif part.shape[1] == 3 and c == 1:
            part = (part * torch.tensor(LUMINANCE).view(1, 3, 1, 1)).sum(1, keepdim=True)
        if part.shape[2:] != (h, w):
            part = F.interpolate(part, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        out[start:start + chunk] = part.round().clamp(0, 255).to(torch.uint8)
    return out


def weights_input(source: str, model_name: str | None = None
                  ) -> tuple[Optional[tuple[int, int, int]], Optional[list], Optional[list]]:
    """The (input size, mean, std) that a weights source records; Nones where it records nothing.

    A published tag (``in1k``) gives its weights' mean/std and leaves the size to the data (fine-tuning
    at 160 px from 224 px weights is normal). Weights that record nothing but are torchvision's
    (``download``, or a file for a ``tv:NAME`` model or a zoo twin of one) were trained on ImageNet's
    mean/std, so those are used, never the new dataset's own statistics; ``download`` takes the mean/std
    the library publishes with its weights (timm's ``xception41``: 0.5, not ImageNet's).
    """
    cfg = weights_preprocessing(source, model_name)
    if cfg is not None:
        return None, list(cfg["mean"]), list(cfg["std"])
    meta = read_weights(source).meta if source != DOWNLOAD else {}
    size = meta.get("input_size")
    size = tuple(int(v) for v in size) if isinstance(size, (list, tuple)) and len(size) == 3 else None
    mean, std = meta.get("mean"), meta.get("std")
    if mean is None or std is None:
        mean = std = None
        if model_name is not None and not meta and _torchvision_weights(model_name):
            mean, std = list(IMAGENET_MEAN), list(IMAGENET_STD)
    return size, mean, std


def weights_preprocessing(source: str, model_name: str | None) -> dict | None:
    """The ``pretrained_cfg`` of published weights (a tag such as ``in1k``, or ``download``) less its class
    names, read from the tables without touching the weights; None for a file or a run."""
    if model_name is None:
        return None
    if source in TAGS:
        cfg = pretrained_cfg_of(f"{model_name}.{source}")
    elif source == DOWNLOAD:
        cfg = published(model_name).cfg
    else:
        return None
    return {k: v for k, v in cfg.items() if k != "classes"}


def _torchvision_weights(model_name: str) -> bool:
    """True where a file without a record can only be torchvision's ImageNet weights."""
    return model_name.startswith("tv:") or model_name in TORCHVISION_TWINS


def adapt_to_weights(data, source: str, notice: Callable[[str], None] | None = None, model_name: str | None = None):
    """(data converted to the weights' input, the weights' (mean, std) or None) for ``model.weights``.

    ``data`` is an :class:`~cnnlab.data.datasets.ImageData`; the returned one is a copy whose
    images have the weights' channels and size. ``model_name`` (the configured model) resolves a
    tag such as ``in1k`` and tells torchvision's weights from others.
    """
    size, mean, std = weights_input(source, model_name)
    if size is not None and tuple(data.input_size) != size:
        if notice:
            notice(f"adapting {data.name} from {'x'.join(map(str, data.input_size))} to the weights' "
                   f"{'x'.join(map(str, size))} input")
        data = dataclasses.replace(data, train_x=adapt_images(data.train_x, size),
                                   test_x=adapt_images(data.test_x, size))
    if mean is not None and notice:
        notice("normalising with the weights' own mean and std")
    return data, (None if mean is None else (list(mean), list(std)))
