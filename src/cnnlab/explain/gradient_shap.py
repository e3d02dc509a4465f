"""Gradient SHAP (Lundberg & Lee, 2017): expected gradients with baselines drawn from training images.

For ``samples`` draws, a baseline b is picked at random from ``baselines`` (M, C,
H, W) (training images in model-input space; default: a black image), a point
b + t (x - b) with t ~ U(0, 1) (plus Gaussian noise of ``noise`` standard
deviations), and the gradient there is multiplied by (x - b). The mean
approximates SHAP values; in expectation the map sums to f(x) - E[f(b)].
"""

from __future__ import annotations

import torch

from cnnlab.errors import CnnlabError
from cnnlab.explain.base import MAX_SAMPLES, AttributionMethod, channel_sum, fill_value


class GradientShap(AttributionMethod):
    name = "gradient_shap"
    signed = True
    random = True
    defaults = {"samples": 16, "baselines": None, "noise": 0.0, "black": None}

    def expansion(self, samples=16, **options) -> int:
        return int(samples)

    def _attribute(self, model, x, target, *, batch_size, samples=16, baselines=None, noise=0.0, black=None,
                   **options) -> torch.Tensor:
        from captum.attr import GradientShap as CaptumGradientShap

        if not 1 <= int(samples) <= MAX_SAMPLES:
            raise CnnlabError(f"gradient_shap needs samples in [1, {MAX_SAMPLES}], got {samples}")
        if baselines is None:
            baselines = fill_value("black", x, black, None).expand(1, *x.shape[1:])
        baselines = baselines.to(x.device, x.dtype)
        if baselines.ndim != 4 or baselines.shape[1:] != x.shape[1:]:
            raise CnnlabError(f"gradient_shap baselines must be (M, {', '.join(map(str, x.shape[1:]))}), "
                              f"got {tuple(baselines.shape)}")
        attr = CaptumGradientShap(model).attribute(x, baselines=baselines, n_samples=int(samples),
                                                   stdevs=float(noise), target=target)  # (n, C, H, W)
        return channel_sum(attr)
