"""Occlusion (Zeiler & Fergus, 2014): how much the target logit drops when a patch is covered.

A ``window`` x ``window`` patch (all channels) slides with ``stride``; each
position is replaced by ``baseline`` (``black``, ``mean`` or a number in
model-input space) and the drop f(x) - f(x occluded) is credited to the covered
pixels, averaged where windows overlap. Windows step until one reaches the
far edge, the last one clipped there, so every pixel is covered. The perturbed copies go through the model
in batches of up to ``batch_size`` images (``batched=False`` sends one at a time,
the slow way the benchmark compares against).
"""

from __future__ import annotations

import torch

from cnnlab.errors import CnnlabError
from cnnlab.explain.base import AttributionMethod, fill_value


class Occlusion(AttributionMethod):
    name = "occlusion"
    signed = True
    needs_grad = False
    defaults = {"window": None, "stride": None, "baseline": "black", "black": None, "mean_colour": None,
                "batched": True}

    @staticmethod
    def geometry(size: int, window, stride) -> tuple[int, int]:
        """Window and stride in pixels; by default a quarter of the image and half a window."""
        w = int(window) if window is not None else max(1, size // 4)
        s = int(stride) if stride is not None else max(1, w // 2)
        if not 1 <= w <= size or s < 1:
            raise CnnlabError(f"occlusion needs 1 <= window <= {size} and stride >= 1, got window {w}, stride {s}")
        return w, s

    def _attribute(self, model, x, target, *, batch_size, window=None, stride=None, baseline="black", black=None,
                   mean_colour=None, batched=True, **options) -> torch.Tensor:
        from captum.attr import Occlusion as CaptumOcclusion

        c, h, w_ = x.shape[1:]
        win, step = self.geometry(min(h, w_), window, stride)
        fill = fill_value(baseline, x, black, mean_colour).expand(1, c, h, w_)  # (1, C, H, W)
        per_eval = max(1, batch_size // x.shape[0]) if batched else 1  # perturbed copies per forward pass
        attr = CaptumOcclusion(model).attribute(x, sliding_window_shapes=(c, win, win), strides=(c, step, step),
                                                baselines=fill, target=target, perturbations_per_eval=per_eval)
        return attr.mean(dim=1)  # every channel got the same credit: (n, C, H, W) -> (n, H, W)
