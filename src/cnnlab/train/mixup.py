"""Mixup (Zhang et al., 2018): train on convex blends of two images and of their labels.

``train.mixup=ALPHA``: before each training step the batch is blended with a shuffled copy
of itself, ``x = lam * x + (1 - lam) * x[perm]``, and the one-hot labels alike, with one
``lam ~ Beta(ALPHA, ALPHA)`` per batch. The classification loss takes the blended label
distribution, so the loss is ``lam * CE(y) + (1 - lam) * CE(y[perm])`` exactly. Draws are a
pure function of (seed, epoch, batch, rank): a resumed run mixes as an uninterrupted one.

>>> import torch
>>> x = torch.tensor([[[[1.0]]], [[[3.0]]]])   # (B=2, C=1, 1, 1)
>>> xm, ym = mix_batch(x, torch.tensor([0, 1]), lam=0.75, perm=torch.tensor([1, 0]), num_classes=2)
>>> xm.flatten().tolist(), ym.tolist()
([1.5, 2.5], [[0.75, 0.25], [0.25, 0.75]])
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cnnlab.data.loader import mix_seed
from cnnlab.train.callbacks import Callback


def soft_labels(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices (B,) -> one-hot float rows (B, K); label distributions (B, K) are returned as they are."""
    return y.float() if y.dim() == 2 else F.one_hot(y, num_classes).float()


def mix_batch(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor,
              num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lam * x + (1 - lam) * x[perm], the labels blended alike)``; x (B, C, H, W), labels (B, K)."""
    soft = soft_labels(y, num_classes)
    return lam * x + (1.0 - lam) * x[perm], lam * soft + (1.0 - lam) * soft[perm]


class BatchMixer(Callback):
    """What mixup and cutmix share: ``alpha``, one seeded draw per (epoch, batch, rank), the class count."""

    salt = 0x313

    def __init__(self, alpha: float, seed: int = 0) -> None:
        self.alpha, self.seed = alpha, seed

    def draws(self, trainer, batch_size: int) -> tuple[np.random.Generator, torch.Tensor]:
        """A NumPy generator for this step's lam (and box) and the shuffled partner of every image."""
        key = mix_seed(self.seed, trainer.epoch, trainer.batch_in_epoch, trainer.strategy.rank, self.salt)
        rng = np.random.default_rng(key)
        gen = torch.Generator().manual_seed(key % 2**63)
        return rng, torch.randperm(batch_size, generator=gen)

    @staticmethod
    def num_classes(trainer) -> int:
        return int(trainer.extra_checkpoint["num_classes"])


class Mixup(BatchMixer):
    """``train.mixup=ALPHA`` (see the module docstring)."""

    def on_train_batch_start(self, trainer, batch):
        x, y = batch
        rng, perm = self.draws(trainer, len(x))
        lam = float(rng.beta(self.alpha, self.alpha))
        return mix_batch(x, y, lam, perm.to(x.device), self.num_classes(trainer))
