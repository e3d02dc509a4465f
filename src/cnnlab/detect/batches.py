"""Batches of a detection split that sits on the device, like :class:`cnnlab.data.loader.DeviceBatches`.

Each batch is ``(x, targets)``: ``x`` (B, C, S, S) float, augmented (training) and
normalised, and ``targets`` a :class:`BoxTargets` holding the per-image boxes and labels,
moved with the pixels by :func:`cnnlab.data.box_augment.augment_detection_batch`.
Randomness is a pure function of ``(seed, epoch, batch)``, so ``--resume`` is exact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from cnnlab.data.loader import mix_seed


@dataclass
class BoxTargets:
    """Per-image boxes (K_i, 4) x1y1x2y2 in input pixels and labels (K_i,); ``len`` is the batch size."""

    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.boxes)

    def as_dicts(self) -> list[dict[str, torch.Tensor]]:
        """The torchmetrics target format."""
        return [{"boxes": b, "labels": lab} for b, lab in zip(self.boxes, self.labels)]


class DetectionBatches:
    """Iterates one :class:`~cnnlab.data.detection.DetectionData` split in batches."""

    def __init__(self, data, batch_size: int, *, shuffle: bool = False, augment=None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None, seed: int = 0,
                 channels_last: bool = False) -> None:
        self.data = data
        self.batch_size = batch_size
        self.shuffle, self.augment, self.seed = shuffle, augment, seed
        self.order_seed = seed  # the epoch's order; a rank's sharded view keeps it and augments with its own seed
        self.channels_last = channels_last
        dev = data.images.device
        self.mean = None if mean is None else torch.tensor(mean, device=dev).view(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std, device=dev).view(1, -1, 1, 1)
        self._gen = torch.Generator(device=dev)

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        n = len(self.data)
        if not self.shuffle:
            return torch.arange(n)
        gen = torch.Generator().manual_seed(mix_seed(self.order_seed, epoch, 0x5EED))
        return torch.randperm(n, generator=gen)

    def _augment_active(self) -> bool:
        a = self.augment
        return a is not None and any(getattr(a, k, 0) for k in
                                     ("hflip", "scale", "translate", "brightness", "contrast", "saturation",
                                                              "hue"))

    def prepare(self, idx: torch.Tensor, epoch: int = 0, batch: int = 0) -> tuple[torch.Tensor, BoxTargets]:
        d = self.data
        x = d.images[idx.to(d.images.device)].float().div_(255.0)  # (B, C, S, S) on [0, 1]
        boxes = [d.boxes[i] for i in idx.tolist()]
        labels = [d.labels[i] for i in idx.tolist()]
        if self._augment_active():
            from cnnlab.data.box_augment import augment_detection_batch

            self._gen.manual_seed(mix_seed(self.seed, epoch, batch, 0xA06))
            x, boxes, labels = augment_detection_batch(x, boxes, labels, self.augment, self._gen)
        if self.mean is not None:
            x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, BoxTargets(list(boxes), list(labels))

    def epoch(self, epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, BoxTargets]]:
        order = self.order(epoch)
        for b in range(start_batch, len(self)):
            yield self.prepare(order[b * self.batch_size:(b + 1) * self.batch_size], epoch, b)

    def __iter__(self):
        return self.epoch(0)

    def subset(self, start: int, stop: int) -> "DetectionBatches":
        """The images ``[start, stop)`` in the same batches and settings (one rank's share of an evaluation)."""
        part = copy.copy(self)
        part.data = self.data.subset(list(range(start, stop)))
        part._gen = torch.Generator(device=self.data.images.device)
        return part

    def sharded(self, rank: int, world_size: int, seed: int) -> "ShardedDetectionBatches":
        """Rank ``rank``'s slice of every global batch (see :class:`ShardedDetectionBatches`)."""
        return ShardedDetectionBatches(self, rank, world_size, seed)


class ShardedDetectionBatches(DetectionBatches):
    """One rank's part of a training split under torchrun, as :class:`cnnlab.train.distributed.ShardedBatches`.

    The epoch's order is the one a single process draws (the run's seed); global batch ``k`` is
    ``order[k*B:(k+1)*B]`` and rank ``r`` takes the ``r``-th slice of ``B / world`` images of it;
    augmentation draws from the rank's ``seed``. ``len()`` is the number of global batches.
    """

    def __init__(self, full: DetectionBatches, rank: int, world_size: int, seed: int) -> None:
        from cnnlab.errors import CnnlabError
        from cnnlab.train.distributed import per_rank_batch  # why lazy: only torchrun runs shard

        self.__dict__.update(full.__dict__)
        self._gen = torch.Generator(device=full.data.images.device)
        self.global_batch, self.rank, self.world_size = full.batch_size, rank, world_size
        self.seed = seed  # order_seed stays full's: the permutation every rank agrees on
        per_rank = per_rank_batch(full.batch_size, world_size)  # refuses a batch the ranks cannot share
        if len(full.data) < full.batch_size:
            raise CnnlabError(f"{len(full.data)} training images are fewer than one global batch of "
                              f"{full.batch_size}; lower data.batch_size or use fewer ranks")
        self.batch_size = per_rank

    def __len__(self) -> int:
        return len(self.data) // self.global_batch  # every rank takes a full share of every step

    def epoch(self, epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, BoxTargets]]:
        order = self.order(epoch)
        local = self.global_batch // self.world_size
        for b in range(start_batch, len(self)):
            start = b * self.global_batch + self.rank * local
            yield self.prepare(order[start:start + local], epoch, b)
