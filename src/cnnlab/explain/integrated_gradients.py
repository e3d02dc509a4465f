"""Integrated gradients (Sundararajan et al., 2017): gradients summed along a path from a baseline.

attribution_i = (x_i - b_i) * mean over t of d f(b + t (x - b)) / d x_i, for
``steps`` points t on [0, 1] (Gauss-Legendre). Completeness: the map sums to
f(x) - f(b) up to the quadrature error (tested within 1%). The baseline is
``black`` (a black image), ``mean`` (the training set's mean colour), ``blurred``
(the image under a Gaussian blur of ``blur_sigma`` pixels, Sturmfels et al.) or a
tensor broadcastable to the images. ``black`` and ``mean_colour`` give those
colours in model-input space, per channel (the run fills them from its
normalisation; both default to 0).
"""

from __future__ import annotations

import torch

from cnnlab.errors import CnnlabError
from cnnlab.explain.base import MAX_SAMPLES, AttributionMethod, channel_sum, fill_value

BASELINES = ("black", "mean", "blurred")


def make_baseline(x: torch.Tensor, baseline, black, mean_colour, blur_sigma: float) -> torch.Tensor:
    """The baseline images (n, C, H, W) for model inputs ``x``."""
    if isinstance(baseline, torch.Tensor):
        try:
            return torch.broadcast_to(baseline.to(x.device, x.dtype), x.shape).clone()
        except RuntimeError:
            raise CnnlabError(f"a baseline of shape {tuple(baseline.shape)} does not fit images "
                              f"{tuple(x.shape)}") from None
    if baseline == "blurred":
        from torchvision.transforms.functional import gaussian_blur

        sigma = float(blur_sigma)
        if not sigma > 0:
            raise CnnlabError(f"blur_sigma must be positive, got {blur_sigma}")
        k = min(2 * int(3 * sigma) + 1, 2 * (min(x.shape[2:]) // 2) - 1 or 1)  # odd, not wider than the image
        return gaussian_blur(x, [k, k], [sigma, sigma])
    if baseline not in BASELINES:
        raise CnnlabError(f"baseline '{baseline}' is not one of {', '.join(BASELINES)}")
    return fill_value(baseline, x, black, mean_colour).expand_as(x).clone()


class IntegratedGradients(AttributionMethod):
    name = "integrated_gradients"
    signed = True
    defaults = {"steps": 32, "baseline": "black", "black": None, "mean_colour": None, "blur_sigma": 3.0}

    def expansion(self, steps=32, **options) -> int:
        return int(steps)

    def _attribute(self, model, x, target, *, batch_size, steps=32, baseline="black", black=None,
                   mean_colour=None, blur_sigma=3.0, **options) -> torch.Tensor:
        from captum.attr import IntegratedGradients as CaptumIG

        if not 1 <= int(steps) <= MAX_SAMPLES:
            raise CnnlabError(f"integrated gradients needs steps in [1, {MAX_SAMPLES}], got {steps}")
        base = make_baseline(x, baseline, black, mean_colour, blur_sigma)
        attr = CaptumIG(model).attribute(x, baselines=base, target=target, n_steps=int(steps),
                                         internal_batch_size=max(batch_size, x.shape[0]))  # (n, C, H, W)
        return channel_sum(attr)
