"""The one interface every cnnlab model has.

A model is ``features`` (images -> feature maps or vectors) followed by
``head`` (features -> class logits). The trainer, profiler, explainer and
transfer-learning code rely only on this:

>>> from cnnlab.models import create_model
>>> model = create_model("mnist_classic")
>>> model.num_classes
10
>>> model.reset_head(5).num_classes
5
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError


class ImageClassifier(nn.Module):
    """Base class: subclasses assign ``self.features`` and ``self.head``.

    ``default_input_size`` is the (C, H, W) the model was designed for; the
    profiler and tests use it when no size is given.
    """

    features: nn.Module
    head: nn.Module
    default_input_size: tuple[int, int, int] = (1, 28, 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Features before the head: (N, C, h, w) maps for most models."""
        return self.features(x)

    def classifier_layer(self) -> nn.Linear:
        """The last ``nn.Linear`` of the head: the layer that outputs logits."""
        linears = [m for m in self.head.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise CnnlabError(f"{type(self).__name__}.head has no nn.Linear to replace")
        return linears[-1]

    @property
    def num_classes(self) -> int:
        return self.classifier_layer().out_features

    def reset_head(self, num_classes: int) -> "ImageClassifier":
        """Replace the final linear layer with a fresh one for ``num_classes`` classes.

        Returns ``self`` so calls can be chained.
        """
        if not isinstance(num_classes, int) or num_classes < 1:
            raise CnnlabError(f"num_classes must be a positive integer, got {num_classes!r}")
        old = self.classifier_layer()
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
        new.to(device=old.weight.device, dtype=old.weight.dtype)
        for parent in self.head.modules():
            for child_name, child in parent.named_children():
                if child is old:
                    setattr(parent, child_name, new)
                    return self
        raise CnnlabError("could not locate the classifier layer inside the head")


def check_input_channels(in_channels: int, num_classes: int) -> None:
    """Shared argument checks for model constructors."""
    if not isinstance(in_channels, int) or in_channels < 1:
        raise CnnlabError(f"in_channels must be a positive integer, got {in_channels!r}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise CnnlabError(f"num_classes must be a positive integer, got {num_classes!r}")
