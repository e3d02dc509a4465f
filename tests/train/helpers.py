"""Small in-memory datasets for trainer tests (real formats are tested in tests/data)."""

import torch

from cnnlab.config import load_config
from cnnlab.data.datasets import ImageData


def toy_data(n_train: int = 96, n_test: int = 48, size: int = 8, seed: int = 0) -> ImageData:
    """Three classes a small CNN learns in a few epochs: bright top, bright left, or dark images."""
    gen = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.arange(n) % 3
        x = torch.randint(0, 60, (n, 1, size, size), generator=gen)
        x[y == 0, :, : size // 2] += 150
        x[y == 1, :, :, : size // 2] += 150
        return x.clamp(0, 255).to(torch.uint8), y

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return ImageData("toy", train_x, train_y, test_x, test_y, ["top", "left", "dark"], "memory")


def toy_config(*overrides: str):
    """A fast config for the toy data: a tiny ConvNet with dropout, augmentation, one-cycle."""
    return load_config(None, [
        "model.name=convnet", "model.filters=[4,8]", "model.dense=16", "model.dropout=0.2",
        "model.image_size=8",
        "data.batch_size=16", "data.eval_batch_size=32", "data.val_fraction=0.25",
        "data.augment.crop_padding=1", "data.augment.noise_std=0.05",
        "optim.name=adam", "optim.lr=0.01", "schedule.name=onecycle",
        "train.epochs=3", "train.log_every=2", "train.plots=false", *overrides])
