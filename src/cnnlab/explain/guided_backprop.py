"""Guided backpropagation (Springenberg et al., 2015): the gradient with only positive signals kept.

Each ReLU's backward pass lets through only positive gradients where the forward
input was positive; the resulting image gradient shows fine detail. Captum does
this with hooks on the ``nn.ReLU`` modules, which is why cnnlab's models call
each activation module once and never in place (DESIGN convention 14). Other
activations (ReLU6, GELU, ...) are passed through as plain gradients.
"""

from __future__ import annotations

import torch

from cnnlab.explain.base import AttributionMethod, channel_max_abs


class GuidedBackprop(AttributionMethod):
    name = "guided_backprop"
    signed = False

    def _attribute(self, model, x, target, *, batch_size, **options) -> torch.Tensor:
        from captum.attr import GuidedBackprop as CaptumGuidedBackprop

        grad = CaptumGuidedBackprop(model).attribute(x, target=target)  # (n, C, H, W)
        return channel_max_abs(grad)
