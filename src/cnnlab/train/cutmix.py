"""CutMix (Yun et al., 2019): paste a rectangle of another image in, and mix the labels by its area.

``train.cutmix=ALPHA``: per batch, ``lam ~ Beta(ALPHA, ALPHA)``; a box of side ratio
``sqrt(1 - lam)`` centred uniformly at random (clipped at the borders) is copied from a
shuffled copy of the batch, and the labels are blended by the area really pasted:
``lam' = 1 - box area / image area``. Draws are a pure function of (seed, epoch, batch, rank).

>>> import torch
>>> x = torch.zeros(2, 1, 4, 4); x[1] = 1.0
>>> xm, ym = cut_batch(x, torch.tensor([0, 1]), box=(0, 2, 0, 4), perm=torch.tensor([1, 0]), num_classes=2)
>>> xm[0, 0].tolist()[0], ym[0].tolist()   # the top two rows of image 1 in image 0: half its area
([1.0, 1.0, 1.0, 1.0], [0.5, 0.5])
"""

from __future__ import annotations

import math

import numpy as np
import torch

from cnnlab.train.mixup import BatchMixer, soft_labels


def cut_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of a box covering about ``1 - lam`` of the image, clipped at its borders."""
    ratio = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return top, bottom, left, right


def cut_batch(x: torch.Tensor, y: torch.Tensor, box: tuple[int, int, int, int], perm: torch.Tensor,
              num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` with ``box`` of ``x[perm]`` pasted in, and the labels blended by the pasted area."""
    top, bottom, left, right = box
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[perm][:, :, top:bottom, left:right]
    lam = 1.0 - (bottom - top) * (right - left) / (x.shape[2] * x.shape[3])
    soft = soft_labels(y, num_classes)
    return mixed, lam * soft + (1.0 - lam) * soft[perm]


class CutMix(BatchMixer):
    """``train.cutmix=ALPHA`` (see the module docstring)."""

    salt = 0xC07

    def on_train_batch_start(self, trainer, batch):
        x, y = batch
        rng, perm = self.draws(trainer, len(x))
        lam = float(rng.beta(self.alpha, self.alpha))
        box = cut_box(x.shape[2], x.shape[3], lam, rng)
        return cut_batch(x, y, box, perm.to(x.device), self.num_classes(trainer))
