"""Batches of a detection split that sits on the device: :class:`cnnlab.data.loader.DeviceBatches` with box targets.

Each batch is ``(x, targets)``: ``x`` (B, C, S, S) float, augmented (training) and
normalised, and ``targets`` a :class:`BoxTargets` holding the per-image boxes and labels,
moved with the pixels by :func:`cnnlab.data.box_augment.augment_detection_batch`.
Randomness is a pure function of ``(seed, epoch, batch)``, so ``--resume`` is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from cnnlab.data.box_augment import augment_detection_batch
from cnnlab.data.loader import DeviceBatches


BOX_AUGMENTS = ("hflip", "scale", "translate", "brightness", "contrast", "saturation", "hue")  # box-aware


@dataclass
class BoxTargets:
    """Per-image boxes (K_i, 4) x1y1x2y2 in input pixels and labels (K_i,); ``len`` is the number of images.

    Both a split's targets and a batch's: :class:`~cnnlab.data.loader.DeviceBatches` takes the
    batch's with :meth:`take`, and augmentation moves the boxes with the pixels.
    """

    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]

    order_on_cpu = True  # the epoch's permutation is drawn on the CPU (as detection always drew it)

    def __len__(self) -> int:
        return len(self.boxes)

    def as_dicts(self) -> list[dict[str, torch.Tensor]]:
        """The torchmetrics target format."""
        return [{"boxes": b, "labels": lab} for b, lab in zip(self.boxes, self.labels)]

    def take(self, idx: torch.Tensor) -> "BoxTargets":
        picked = idx.tolist()
        return BoxTargets([self.boxes[i] for i in picked], [self.labels[i] for i in picked])

    def slice(self, start: int, stop: int) -> "BoxTargets":
        return BoxTargets(self.boxes[start:stop], self.labels[start:stop])

    def augments(self, augment) -> bool:
        return augment is not None and any(getattr(augment, k, 0) for k in BOX_AUGMENTS)

    def augment(self, x, y: "BoxTargets", augment, gen, *, index, epoch: int, seed: int):
        """(x, y) after the box-aware augmentations of ``augment`` (an AugmentConfig) moved pixels and boxes."""
        x, boxes, labels = augment_detection_batch(x, y.boxes, y.labels, augment, gen)
        return x, BoxTargets(list(boxes), list(labels))


class DetectionBatches(DeviceBatches):
    """A :class:`DeviceBatches` over one :class:`~cnnlab.data.detection.DetectionData` split: its images
    and :class:`BoxTargets` (only the construction differs; ``augment`` is the run's AugmentConfig)."""

    def __init__(self, data, batch_size: int, *, shuffle: bool = False, augment=None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None, seed: int = 0,
                 channels_last: bool = False) -> None:
        super().__init__(data.images, BoxTargets(list(data.boxes), list(data.labels)), batch_size,
                         shuffle=shuffle, augment=augment, mean=mean, std=std, seed=seed,
                         channels_last=channels_last)
