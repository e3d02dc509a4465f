"""Batches from tensors that already sit on the device: shuffle, convert, augment, normalise.

The whole split stays on the device as uint8 (4x smaller than float); each
batch is gathered by index, scaled to [0, 1], augmented as a batch and
normalised, all with tensor ops. Randomness is a pure function of
``(seed, epoch, batch)``: the shuffle order of an epoch and the augmentation
of a batch can be recreated exactly, which is what makes ``--resume`` exact.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Sequence

import torch

from cnnlab.data.augment import BatchAugment


def mix_seed(*numbers: int) -> int:
    """Combine integers into one 63-bit seed (a simple, stable hash)."""
    value = 0x2545F4914F6CDD1D
    for n in numbers:
        value = (value * 6364136223846793005 + int(n) + 1442695040888963407) % (1 << 63)
    return value




class LabelTargets:
    """The targets of a classification split: one class label per image, (N,) int64 on the images' device.

    A batch's targets are ``labels[idx]`` (a tensor); augmentation moves pixels only. Any other
    target type (boxes: :class:`cnnlab.detect.batches.BoxTargets`) answers the same four calls.
    """

    order_on_cpu = False  # the epoch's permutation is drawn on the images' device

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        return self.labels[idx]

    def slice(self, start: int, stop: int) -> "LabelTargets":
        return LabelTargets(self.labels[start:stop])

    def augments(self, augment) -> bool:
        return augment is not None and augment.active

    def augment(self, x, y, augment, gen, *, index, epoch: int, seed: int):
        """(x, y) of a batch after ``augment`` (a BatchAugment); ``index``: the images' positions in the split
        (only alternating flips use them)."""
        index = index if augment.cfg.flip_mode == "alternate" else None
        return augment(x, gen, index=index, epoch=epoch, seed=seed), y


class DeviceBatches:
    """Iterates one split that sits on the device in batches ``(x, targets)``, for any target type.

    ``images`` (N, C, H, W) uint8 on ``device``; ``targets`` the split's targets: a labels tensor
    (N,) int64 (classification, wrapped in :class:`LabelTargets`) or a target object with
    ``take`` / ``slice`` / ``augments`` / ``augment`` (detection's boxes). ``mean``/``std`` are
    per-channel on the [0, 1] scale (None: no normalisation). The order of an epoch comes from
    ``order_seed`` (the run's seed), a batch's augmentation from ``seed`` (a rank's, under torchrun).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        augment: BatchAugment | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        self.images = images
        self.targets = LabelTargets(targets) if isinstance(targets, torch.Tensor) else targets
        self.batch_size = batch_size
        self.shuffle, self.augment, self.seed = shuffle, augment, seed
        self.order_seed = seed  # a rank's sharded view keeps this and augments with its own seed
        # Dropping a last partial batch only makes sense when a full batch exists.
        self.drop_last = drop_last and len(images) > batch_size
        self.channels_last = channels_last
        dev = images.device
        self.mean = None if mean is None else torch.tensor(mean, device=dev).view(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std, device=dev).view(1, -1, 1, 1)
        self._gen = torch.Generator(device=dev)

    @property
    def labels(self) -> torch.Tensor:
        """The class labels (N,) of a classification split."""
        return self.targets.labels

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """The image order of ``epoch`` (a fixed permutation per seed and epoch)."""
        n = len(self.images)
        if self.targets.order_on_cpu:  # drawn on the CPU whatever the device (detection's order, kept as it was)
            if not self.shuffle:
                return torch.arange(n)
            return torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed(self.order_seed, epoch,
                                                                                         0x5EED)))
        if not self.shuffle:
            return torch.arange(n, device=self.images.device)
        self._gen.manual_seed(mix_seed(self.order_seed, epoch, 0x5EED))
        return torch.randperm(n, generator=self._gen, device=self.images.device)

    def prepare(self, raw: torch.Tensor, y, epoch: int = 0, batch: int = 0, index: torch.Tensor | None = None):
        """A uint8 batch and its targets -> (float, augmented (if enabled), normalised, optionally channels_last;
        the targets as augmentation moved them). ``index`` holds the images' positions in the split."""
        x = raw.float().div_(255.0)
        if self.targets.augments(self.augment):
            self._gen.manual_seed(mix_seed(self.seed, epoch, batch, 0xA06))
            x, y = self.targets.augment(x, y, self.augment, self._gen, index=index, epoch=epoch, seed=self.seed)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def batch(self, idx: torch.Tensor, epoch: int = 0, b: int = 0, index: torch.Tensor | None = None):
        """``(x, targets)`` of the images at ``idx``, as batch ``b`` of ``epoch``."""
        return self.prepare(self.images[idx.to(self.images.device)], self.targets.take(idx), epoch, b, index)

    def epoch(self, epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, Any]]:
        """Yield ``(x, y)`` batches of ``epoch``, starting at batch ``start_batch`` (for resume)."""
        order = self.order(epoch)
        for b in range(start_batch, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self.batch(idx, epoch, b, index=idx)

    def __iter__(self):
        return self.epoch(0)

    def subset(self, start: int, stop: int) -> "DeviceBatches":
        """The images ``[start, stop)`` in the same batches and settings (one rank's share of an evaluation)."""
        part = copy.copy(self)
        part.images, part.targets = self.images[start:stop], self.targets.slice(start, stop)
        part._gen = torch.Generator(device=self.images.device)
        return part
