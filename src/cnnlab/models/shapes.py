"""Shape inference for building heads: run a dummy input through the features."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError


def feature_shape(features: nn.Module, input_size: tuple[int, int, int], name: str) -> tuple[int, ...]:
    """Output shape (without batch) of ``features`` for one (C, H, W) input.

    A size the layers cannot take becomes a one-line error naming the model
    and the size, instead of a torch shape error deep inside a conv.
    """
    was_training = features.training
    features.eval()  # BatchNorm cannot take a batch of one in training mode
    try:
        with torch.no_grad():
            out = features(torch.zeros(1, *input_size))
    except RuntimeError as exc:
        c, h, w = input_size
        raise CnnlabError(
            f"model '{name}' cannot take {h}x{w} images with {c} channel(s): "
            f"the feature maps shrink below the kernel size ({str(exc).splitlines()[0]}); "
            "use larger images (data.image_size) or fewer down-sampling blocks"
        ) from None
    finally:
        features.train(was_training)
    if 0 in out.shape:
        raise CnnlabError(f"model '{name}' reduces a {input_size} input to an empty map {tuple(out.shape)}")
    return tuple(out.shape[1:])
