"""From a loaded dataset and its config to device-resident train/val/test batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.config import DataConfig
from cnnlab.data.augment import BatchAugment
from cnnlab.data.datasets import ImageData
from cnnlab.data.loader import DeviceBatches
from cnnlab.data.splits import stratified_split
from cnnlab.data.stats import channel_stats


@dataclass
class Splits:
    train: DeviceBatches
    val: DeviceBatches | None
    test: DeviceBatches
    mean: list[float] | None
    std: list[float] | None
    counts: dict[str, int]


def make_splits(data: ImageData, cfg: DataConfig, device: torch.device, seed: int,
                channels_last: bool = False) -> Splits:
    """Split, compute normalisation statistics on the training part, move everything to ``device``.

    ``val=split`` holds out a stratified ``val_fraction`` of the training set;
    ``val=test`` validates on the test set; ``val=none`` has no validation.
    ``final_fit`` trains on training + validation images (no validation left).
    """
    train_x, train_y = data.train_x, data.train_y
    if cfg.limit_train:
        keep, _ = (stratified_split(train_y.numpy(), 1 - cfg.limit_train / len(train_y), seed)
                   if cfg.limit_train < len(train_y) else (None, None))
        if keep is not None:
            train_x, train_y = train_x[keep], train_y[keep]
    val_x = val_y = None
    if cfg.val == "split" and not cfg.final_fit:
        keep, held = stratified_split(train_y.numpy(), cfg.val_fraction, seed)
        train_x, train_y, val_x, val_y = train_x[keep], train_y[keep], train_x[held], train_y[held]
    elif cfg.val == "test" and not cfg.final_fit:
        val_x, val_y = data.test_x, data.test_y
    mean, std = channel_stats(train_x) if cfg.normalize else (None, None)

    def batches(x, y, train: bool) -> DeviceBatches:
        return DeviceBatches(
            x.to(device), y.to(device), cfg.batch_size if train else cfg.eval_batch_size,
            shuffle=train, drop_last=train, augment=BatchAugment(cfg.augment) if train else None,
            mean=mean, std=std, seed=seed, channels_last=channels_last)

    counts = {"train": len(train_x), "val": 0 if val_x is None else len(val_x), "test": len(data.test_x)}
    return Splits(
        train=batches(train_x, train_y, True),
        val=None if val_x is None else batches(val_x, val_y, False),
        test=batches(data.test_x, data.test_y, False),
        mean=mean, std=std, counts=counts)
