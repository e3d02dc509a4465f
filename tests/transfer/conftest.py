"""Fixtures for the transfer tests: real CIFAR-10 JPEGs in a small folder, a small trained MNIST run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnlab.cli import main


def cifar_root() -> Path:
    from cnnlab.data.locate import find_dataset_dir

    return find_dataset_dir("cifar10-jpeg")


@pytest.fixture(scope="session")
def cifar_folder(tmp_path_factory) -> Path:
    """ROOT/train/<class>/ (12 per class) and ROOT/test/<class>/ (26 per class): 260 real CIFAR-10 test images."""
    source = cifar_root()
    root = tmp_path_factory.mktemp("cifar-small")
    for split, count in (("train", 12), ("test", 26)):
        for cls in sorted(p.name for p in (source / split).iterdir() if p.is_dir()):
            (root / split / cls).mkdir(parents=True)
            for f in sorted((source / split / cls).iterdir())[:count]:
                shutil.copy(f, root / split / cls / f.name)
    return root


def train_cli(*argv) -> dict:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main([str(a) for a in argv] + ["--json"])
    assert code == 0
    return json.loads(buffer.getvalue())


@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory) -> Path:
    """mnist-fast (batch-norm ConvNet, 3 blocks) on 1,024 real MNIST images: a trained run directory."""
    out = tmp_path_factory.mktemp("runs") / "mnist"
    train_cli("train", "mnist-fast", "data.limit_train=1024", "train.plots=false", "train.channels_last=false",
              "--out", out, "--quiet")
    return out


@pytest.fixture(scope="session")
def cifar_run(tmp_path_factory, cifar_folder) -> Path:
    """A small batch-norm ConvNet trained one epoch on the real CIFAR JPEG folder (32x32, 3 channels)."""
    out = tmp_path_factory.mktemp("runs") / "cifar"
    cache = tmp_path_factory.mktemp("decoded")
    train_cli("train", "folder-convnet", f"data.root={cifar_folder}", f"data.cache_dir={cache}",
              "data.image_size=32", "data.val=none", "train.epochs=1", "model.filters=8", "data.batch_size=32",
              "train.plots=false", "train.early_stopping.patience=null", "train.channels_last=false",
              "--out", out, "--quiet")
    return out
