"""SmoothGrad (Smilkov et al., 2017): saliency averaged over noisy copies of the image.

``samples`` copies get Gaussian noise of standard deviation ``noise`` times the
batch's value range (the paper finds 10-20% best); the mean of their |gradient|
maps is far less speckled than one gradient. Noise is drawn from the seeded
generator (``seed=``), so a call is repeatable.
"""

from __future__ import annotations

import torch

from cnnlab.errors import CnnlabError
from cnnlab.explain.base import MAX_SAMPLES, AttributionMethod, channel_max_abs


class SmoothGrad(AttributionMethod):
    name = "smoothgrad"
    signed = False
    random = True
    defaults = {"samples": 16, "noise": 0.15}

    def expansion(self, samples=16, **options) -> int:
        return int(samples)

    def _attribute(self, model, x, target, *, batch_size, samples=16, noise=0.15, **options) -> torch.Tensor:
        from captum.attr import NoiseTunnel
        from captum.attr import Saliency as CaptumSaliency

        if not 1 <= int(samples) <= MAX_SAMPLES or not 0 <= float(noise) <= 10:
            raise CnnlabError(f"smoothgrad needs samples in [1, {MAX_SAMPLES}] and noise in [0, 10], "
                              f"got {samples} and {noise}")
        stdev = float(noise) * float(x.detach().max() - x.detach().min())  # noise relative to the input's range
        per_pass = max(1, batch_size // x.shape[0])  # noisy copies of the chunk per forward pass
        grad = NoiseTunnel(CaptumSaliency(model)).attribute(
            x, nt_type="smoothgrad", nt_samples=int(samples), nt_samples_batch_size=min(per_pass, int(samples)),
            stdevs=stdev, target=target, abs=True)  # (n, C, H, W): the mean |gradient|
        return channel_max_abs(grad)
