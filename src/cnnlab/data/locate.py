"""Finding datasets on disk: ``--data-dir``, then ``$CNNLAB_DATA``, then ``./data``.

Each dataset has a few accepted layouts (cnnlab's own folder names, which
match ``../shared/datasets``, and torchvision's). A dataset that is found
nowhere is an error naming every path tried and the files expected there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError, did_you_mean

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class DatasetLayout:
    """Where a dataset may live under a data root and how to recognise it."""

    folders: tuple[str, ...]  # candidate sub-folders of a data root
    required: tuple[str, ...]  # entries that must exist inside (an IDX file may also be .gz)
    kind: str  # idx | cifar | folder


LAYOUTS: dict[str, DatasetLayout] = {
    "mnist": DatasetLayout(("mnist", "MNIST/raw"), IDX_FILES, "idx"),
    "fashion-mnist": DatasetLayout(("fashion-mnist", "FashionMNIST/raw"), IDX_FILES, "idx"),
    "cifar10": DatasetLayout(("cifar-10-batches-py",), ("data_batch_1", "test_batch", "batches.meta"), "cifar"),
    "cifar100": DatasetLayout(("cifar-100-python",), ("train", "test", "meta"), "cifar"),
    "cifar10-jpeg": DatasetLayout(("cifar10-jpeg",), ("train", "test"), "folder"),
    "imagenette-160": DatasetLayout(("imagenette-160",), ("train", "val"), "folder"),
}
ALIASES = {"fashion_mnist": "fashion-mnist", "fashion": "fashion-mnist", "imagenette": "imagenette-160",
           "cifar10_jpeg": "cifar10-jpeg", "cifar-10": "cifar10", "cifar-100": "cifar100"}
DATASET_NAMES = tuple(LAYOUTS) + ("folder",)


def canonical_name(name: str) -> str:
    """Map aliases (``fashion``, ``imagenette``) to the canonical dataset name."""
    name = ALIASES.get(name, name)
    if name not in DATASET_NAMES:
        raise CnnlabError(f"unknown dataset '{name}'; {did_you_mean(name, DATASET_NAMES)}")
    return name


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The data roots searched, in order: explicit ``data_dir``, ``$CNNLAB_DATA``, ``./data``."""
    roots = []
    if data_dir:
        roots.append(Path(data_dir))
    if os.environ.get("CNNLAB_DATA"):
        roots.append(Path(os.environ["CNNLAB_DATA"]))
    roots.append(Path("data"))
    return roots


def _has(folder: Path, entry: str, kind: str) -> bool:
    if kind == "idx":
        return (folder / entry).is_file() or (folder / f"{entry}.gz").is_file()
    return (folder / entry).exists()


def find_dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding dataset ``name``; an error lists every place tried.

    A ``data_dir`` that itself is the dataset folder (holds the files
    directly) is accepted too.
    """
    name = canonical_name(name)
    if name == "folder":
        raise CnnlabError("dataset 'folder' is located by data.root, not searched for")
    layout = LAYOUTS[name]
    tried: list[Path] = []
    for root in search_roots(data_dir):
        for candidate in [root / f for f in layout.folders] + [root]:
            tried.append(candidate)
            if all(_has(candidate, entry, layout.kind) for entry in layout.required):
                return candidate
    expected = ", ".join(f"{e}{'[.gz]' if layout.kind == 'idx' else ''}" for e in layout.required)
    raise CnnlabError(
        f"dataset '{name}' not found; looked in {', '.join(str(p) for p in tried)}; "
        f"expected {expected} in one of them; pass --data-dir DIR or set CNNLAB_DATA"
        + ("" if layout.kind == "folder" else ", or set data.download=true to fetch it (online only)")
    )


def _idx_path(folder: Path, stem: str) -> Path:
    plain = folder / stem
    return plain if plain.is_file() else folder / f"{stem}.gz"


def load_idx_dataset(name: str, data_dir: str | os.PathLike | None = None):
    """MNIST-style dataset as NumPy uint8 arrays ``(train_x (N,28,28), train_y, test_x, test_y)``.

    >>> tx, ty, vx, vy = load_idx_dataset("mnist")  # doctest: +SKIP
    """
    from cnnlab.data.idx import read_idx

    folder = find_dataset_dir(name, data_dir)
    arrays = [read_idx(_idx_path(folder, stem)) for stem in IDX_FILES]
    train_x, train_y, test_x, test_y = arrays
    for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "test")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise CnnlabError(
                f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match; "
                "expected (N, H, W) images and N labels"
            )
    return train_x, train_y.astype(np.int64), test_x, test_y.astype(np.int64)
