"""Saliency (Simonyan et al., 2014): how much each pixel's change moves the target logit.

The map is |d logit_target / d x| with the largest magnitude over channels. For
a linear model ``logit = W x`` it is exactly |W[target]| (tested).
"""

from __future__ import annotations

import torch

from cnnlab.explain.base import AttributionMethod, channel_max_abs


class Saliency(AttributionMethod):
    name = "saliency"
    signed = False

    def _attribute(self, model, x, target, *, batch_size, **options) -> torch.Tensor:
        from captum.attr import Saliency as CaptumSaliency

        grad = CaptumSaliency(model).attribute(x, target=target, abs=True)  # (n, C, H, W)
        return channel_max_abs(grad)
