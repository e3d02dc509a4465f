"""Batches from tensors that already sit on the device: shuffle, convert, augment, normalise.

The whole split stays on the device as uint8 (4x smaller than float); each
batch is gathered by index, scaled to [0, 1], augmented as a batch and
normalised, all with tensor ops. Randomness is a pure function of
``(seed, epoch, batch)``: the shuffle order of an epoch and the augmentation
of a batch can be recreated exactly, which is what makes ``--resume`` exact.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch

from cnnlab.data.augment import BatchAugment


def mix_seed(*numbers: int) -> int:
    """Combine integers into one 63-bit seed (a simple, stable hash)."""
    value = 0x2545F4914F6CDD1D
    for n in numbers:
        value = (value * 6364136223846793005 + int(n) + 1442695040888963407) % (1 << 63)
    return value




class DeviceBatches:
    """Iterates one split in batches.

    ``images`` (N, C, H, W) uint8 and ``labels`` (N,) int64, both on ``device``.
    ``mean``/``std`` are per-channel on the [0, 1] scale (None: no normalisation).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
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
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.shuffle, self.augment, self.seed = shuffle, augment, seed
        # Dropping a last partial batch only makes sense when a full batch exists.
        self.drop_last = drop_last and len(images) > batch_size
        self.channels_last = channels_last
        dev = images.device
        self.mean = None if mean is None else torch.tensor(mean, device=dev).view(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std, device=dev).view(1, -1, 1, 1)
        self._gen = torch.Generator(device=dev)

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """The image order of ``epoch`` (a fixed permutation per seed and epoch)."""
        n = len(self.images)
        if not self.shuffle:
            return torch.arange(n, device=self.images.device)
        self._gen.manual_seed(mix_seed(self.seed, epoch, 0x5EED))
        return torch.randperm(n, generator=self._gen, device=self.images.device)

    def prepare(self, raw: torch.Tensor, epoch: int = 0, batch: int = 0,
                index: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 batch -> float, augmented (if enabled), normalised, optionally channels_last.

        ``index`` holds the images' positions in the split (for alternating flips).
        """
        x = raw.float().div_(255.0)
        if self.augment is not None and self.augment.active:
            self._gen.manual_seed(mix_seed(self.seed, epoch, batch, 0xA06))
            x = self.augment(x, self._gen, index=index, epoch=epoch, seed=self.seed)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def epoch(self, epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)`` batches of ``epoch``, starting at batch ``start_batch`` (for resume)."""
        order = self.order(epoch)
        for b in range(start_batch, len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if self.augment is not None and self.augment.cfg.flip_mode == "alternate":  # needs the images' indices
                yield self.prepare(self.images[idx], epoch, b, index=idx), self.labels[idx]
            else:  # the plain call, as subclasses that override prepare() expect
                yield self.prepare(self.images[idx], epoch, b), self.labels[idx]

    def __iter__(self):
        return self.epoch(0)
