"""Guided Grad-CAM (Selvaraju et al., 2017): guided backprop masked by the upsampled Grad-CAM map.

Guided backprop is sharp but barely class-specific; Grad-CAM is class-specific
but coarse; their element-wise product is both. ``layer`` as for Grad-CAM.
"""

from __future__ import annotations

import torch

from cnnlab.explain.base import AttributionMethod, channel_max_abs
from cnnlab.explain.layers import get_layer, last_conv_layer


class GuidedGradCam(AttributionMethod):
    name = "guided_gradcam"
    signed = False
    uses_layer = True
    defaults = {"layer": None}

    def _attribute(self, model, x, target, *, batch_size, layer=None, **options) -> torch.Tensor:
        from captum.attr import GuidedGradCam as CaptumGuidedGradCam

        module = get_layer(model, layer or last_conv_layer(model, tuple(x.shape[1:])))
        attr = CaptumGuidedGradCam(model, module).attribute(x, target=target, interpolate_mode="bilinear")
        return channel_max_abs(attr)  # (n, C, H, W) -> (n, H, W)
