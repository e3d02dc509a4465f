"""Shared fixtures: a tiny image folder in real PNG/JPEG files, and the real MNIST when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# The fuzz suite's count of generated inputs, summed over xdist workers (see tests/fuzz/report.py).
from tests.fuzz.report import pytest_sessionfinish, pytest_terminal_summary, pytest_testnodedown  # noqa: F401

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def pytest_configure(config):
    # The real datasets live in ../shared/datasets on the project's machines.
    if not os.environ.get("CNNLAB_DATA") and SHARED.is_dir():
        os.environ["CNNLAB_DATA"] = str(SHARED)
    # Tests never reach the internet: a dataset that is not found must not be downloaded.
    # The download tests unset this and point cnnlab at a server on 127.0.0.1.
    os.environ["CNNLAB_OFFLINE"] = "1"
    # Test tensors are small: one intra-op thread per test process avoids OpenMP threads
    # fighting over the two cores (10-20x slowdowns were measured) when workers run in parallel.
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def mnist_root() -> Path:
    """The directory holding the real MNIST files (skips if absent)."""
    from cnnlab.data.locate import find_dataset_dir
    from cnnlab.errors import CnnlabError

    try:
        return find_dataset_dir("mnist")
    except CnnlabError as exc:
        pytest.skip(f"real MNIST not available: {exc}")


def pattern_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A 3-class toy image: horizontal stripes, vertical stripes, or a centred square, plus noise."""
    img = rng.integers(0, 40, size=(size, size)).astype(np.uint8)
    if label == 0:
        img[::4] = 220
    elif label == 1:
        img[:, ::4] = 220
    else:
        q = size // 4
        img[q:-q, q:-q] = 220
    return img


def write_folder(root: Path, per_class: int = 12, size: int = 16, colour: bool = True, fmt: str = "png",
                 seed: int = 0) -> Path:
    """ROOT/<class>/<i>.<fmt> with three learnable classes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    names = ["hstripes", "vstripes", "square"]
    for label, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            grey = pattern_image(label, size, rng)
            img = Image.fromarray(np.stack([grey] * 3, -1) if colour else grey)
            img.save(root / name / f"{i:03d}.{fmt}")
    return root


@pytest.fixture
def tiny_folder(tmp_path) -> Path:
    return write_folder(tmp_path / "images", per_class=20, size=16)


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def mnist_run(tmp_path_factory) -> Path:
    """One real MNIST run (mnist-fast on 12,000 training images, ~0.98 test accuracy), trained once per test session.

    Under pytest-xdist the workers share it: the first to take the lock trains, the others wait and
    reuse it. Tests that write into a run copy it first (``copy_run``) so they never disturb each other.
    """
    import fcntl

    from cnnlab.config import load_config
    from cnnlab.data.locate import find_dataset_dir
    from cnnlab.errors import CnnlabError
    from cnnlab.train.run import train

    try:
        find_dataset_dir("mnist")
    except CnnlabError as exc:
        pytest.skip(f"real MNIST not available: {exc}")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # one folder per session either way
    run = shared / "mnist-run"
    with open(shared / "mnist-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (run / "summary.json").is_file():
            cfg = load_config("mnist-fast", ["data.limit_train=12000", "train.threads=1"])
            train(cfg, run, quiet=True)
    return run


@pytest.fixture
def copy_run(mnist_run, tmp_path):
    """A private copy of the session's MNIST run, for tests that write into a run directory."""
    import shutil

    def make(name: str = "run") -> Path:
        target = tmp_path / name
        shutil.copytree(mnist_run, target)
        return target

    return make
