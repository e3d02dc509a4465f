"""Grad-CAM (Selvaraju et al., 2017): where a conv layer's features support the target class.

The layer's feature maps A (n, K, h, w) are weighted by the spatial mean of the
target logit's gradient per channel, summed over channels and passed through a
ReLU, then upsampled (bilinear) to the input size. One forward and one backward
pass per batch. ``layer`` names a conv layer (default: the last one that runs,
found by a dry run of one image per call; name it to save that pass).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.explain.base import AttributionMethod
from cnnlab.explain.layers import get_layer, last_conv_layer


class GradCam(AttributionMethod):
    name = "gradcam"
    signed = False
    uses_layer = True
    defaults = {"layer": None}

    def _attribute(self, model, x, target, *, batch_size, layer=None, **options) -> torch.Tensor:
        from captum.attr import LayerGradCam

        module = get_layer(model, layer or last_conv_layer(model, tuple(x.shape[1:])))
        cam = LayerGradCam(model, module).attribute(x, target=target, relu_attributions=True)  # (n, 1, h, w)
        cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)  # (n, 1, H, W)
        return cam[:, 0]
