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

The base class also owns what every constructor would otherwise repeat: the
checks of ``in_channels``, ``num_classes`` and ``image_size``, the
``default_input_size`` they give, and weight initialisation by a named rule
(:meth:`ImageClassifier.init_weights`).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.models import checks

# Rules for re-initialising conv / linear weights (biases become zero). ``default`` keeps PyTorch's.
INIT_RULES = ("default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "orthogonal",
              "kaiming_normal_fan_out", "normal_0.01")
INITS = INIT_RULES[:6]  # the ones a config may pick (convnet's ``init`` option)


class ImageClassifier(nn.Module):
    """Base class: subclasses call ``super().__init__(in_channels, num_classes, image_size)`` and
    assign ``self.features`` and ``self.head``.

    ``default_input_size`` is the (C, H, W) the model was designed for: ``in_channels``
    and ``image_size`` (``default_image_size`` when None); the profiler and tests use it
    when no size is given.
    """

    features: nn.Module
    head: nn.Module
    default_input_size: tuple[int, int, int] = (1, 28, 28)

    def __init__(self, in_channels: Optional[int] = None, num_classes: Optional[int] = None,
                 image_size: Optional[int] = None, default_image_size: int = 28) -> None:
        super().__init__()
        if in_channels is None:  # a subclass that sets everything itself
            return
        checks.positive_int("in_channels", in_channels, maximum=checks.MAX_WIDTH)
        checks.positive_int("num_classes", num_classes, maximum=checks.MAX_WIDTH)
        size = checks.image_size(image_size, default_image_size)
        self.default_input_size = (in_channels, size, size)

    @property
    def image_size(self) -> int:
        """The side of the square input the model was built for."""
        return self.default_input_size[1]

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
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise CnnlabError(f"num_classes must be a positive integer, got {checks.short(num_classes)}")
        old = self.classifier_layer()
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
        new.to(device=old.weight.device, dtype=old.weight.dtype)
        for parent in self.head.modules():
            for child_name, child in parent.named_children():
                if child is old:
                    setattr(parent, child_name, new)
                    return self
        raise CnnlabError("could not locate the classifier layer inside the head")

    def init_weights(self, conv: str = "default", linear: str = "default", norm: bool = False) -> None:
        """Re-initialise the weights by named rules, in one pass over the modules in order.

        ``conv`` and ``linear`` name the rule for ``nn.Conv2d`` and ``nn.Linear`` weights
        (their biases become zero): ``kaiming_normal``/``kaiming_uniform`` (fan-in, ReLU gain),
        ``kaiming_normal_fan_out`` (He et al. as torchvision's ResNets use it),
        ``normal_0.01``, ``xavier_normal``/``xavier_uniform``, ``orthogonal``, or ``default``
        (PyTorch's own, left untouched). ``norm=True`` sets batch/group norm scales to 1 and
        shifts to 0. One pass in module order keeps the random draws, and so the weights
        for a given seed, the same as every family's former loop.
        """
        for rule in (conv, linear):
            if rule not in INIT_RULES:
                raise CnnlabError(f"unknown weight init {checks.short(rule)}; {did_you_mean(str(rule), INITS)}")
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                _apply_rule(module, conv if isinstance(module, nn.Conv2d) else linear)
            elif norm and isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def _apply_rule(module: nn.Module, rule: str) -> None:
    weight = getattr(module, "weight", None)
    if rule == "default" or weight is None:
        return
    if rule == "kaiming_normal":
        nn.init.kaiming_normal_(weight, nonlinearity="relu")
    elif rule == "kaiming_uniform":
        nn.init.kaiming_uniform_(weight, nonlinearity="relu")
    elif rule == "kaiming_normal_fan_out":
        nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
    elif rule == "normal_0.01":
        nn.init.normal_(weight, 0, 0.01)
    elif rule == "xavier_normal":
        nn.init.xavier_normal_(weight)
    elif rule == "xavier_uniform":
        nn.init.xavier_uniform_(weight)
    elif rule == "orthogonal":
        nn.init.orthogonal_(weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)
