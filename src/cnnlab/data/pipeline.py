"""From a loaded dataset and its config to device-resident train/val/test batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.config import DataConfig
from cnnlab.data.augment import BatchAugment
from cnnlab.data.datasets import ImageData
from cnnlab.data.loader import DeviceBatches
from cnnlab.data.splits import limit_train, stratified_split
from cnnlab.data.stats import channel_stats
from cnnlab.errors import CnnlabError


@dataclass
class Splits:
    train: DeviceBatches
    val: DeviceBatches | None
    test: DeviceBatches
    mean: list[float] | None
    std: list[float] | None
    counts: dict[str, int]


def choose_train_val(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                     cfg: DataConfig, seed: int):
    """((train_x, train_y), (val_x, val_y) or None) after ``limit_train`` and the validation choice.

    Works on anything indexed by image (uint8 images, cached feature vectors): ``limit_train=N``
    draws exactly N training images at random (seeded), keeping each class's share; ``val=split``
    holds out a stratified ``val_fraction``; ``val=test`` validates on the test set.
    """
    keep = limit_train(train_y.numpy(), cfg.limit_train, seed)
    if keep is not None:
        train_x, train_y = train_x[keep], train_y[keep]
    if cfg.final_fit or cfg.val == "none":
        return (train_x, train_y), None
    if cfg.val == "test":
        return (train_x, train_y), (test_x, test_y)
    keep, held = stratified_split(train_y.numpy(), cfg.val_fraction, seed)
    if len(held) == 0:  # only when no class has 2 training images
        raise CnnlabError(
            f"the validation split is empty: no class has 2 or more of the {len(train_y)} training images, "
            "so none can be held out; add images (or raise data.limit_train), or set data.val=none "
            "(or data.val=test)"
        )
    return (train_x[keep], train_y[keep]), (train_x[held], train_y[held])


def make_splits(data: ImageData, cfg: DataConfig, device: torch.device, seed: int,
                channels_last: bool = False, stats: tuple[list[float], list[float]] | None = None) -> Splits:
    """Split, compute normalisation statistics on the training part, move everything to ``device``.

    ``val=split`` holds out a stratified ``val_fraction`` of the training set;
    ``val=test`` validates on the test set; ``val=none`` has no validation.
    ``final_fit`` trains on training + validation images (no validation left).
    ``limit_train=N`` first draws exactly N training images at random (seeded
    by ``seed``), keeping each class's share (:func:`stratified_subset`).
    An empty training, test or validation split is an error. ``stats`` = (mean, std) replaces the
    training split's own statistics (pretrained weights keep the normalisation they learned with).
    """
    train_x, train_y = data.train_x, data.train_y
    if len(train_y) == 0 or len(data.test_y) == 0:
        raise CnnlabError(f"{data.name}: {len(train_y)} training and {len(data.test_y)} test images; "
                          "both splits need images (add images, or check the dataset's files)")
    (train_x, train_y), val = choose_train_val(train_x, train_y, data.test_x, data.test_y, cfg, seed)
    val_x, val_y = val if val is not None else (None, None)
    if not cfg.normalize:
        mean, std = None, None
    else:
        mean, std = stats if stats is not None else channel_stats(train_x)

    def batches(x, y, train: bool) -> DeviceBatches:
        return DeviceBatches(
            x.to(device), y.to(device), cfg.batch_size if train else cfg.eval_batch_size,
            shuffle=train, drop_last=train, augment=BatchAugment.for_images(cfg.augment, x) if train else None,
            mean=mean, std=std, seed=seed, channels_last=channels_last)

    counts = {"train": len(train_x), "val": 0 if val_x is None else len(val_x), "test": len(data.test_x)}
    return Splits(
        train=batches(train_x, train_y, True),
        val=None if val_x is None else batches(val_x, val_y, False),
        test=batches(data.test_x, data.test_y, False),
        mean=mean, std=std, counts=counts)
