"""Finding datasets on disk: ``--data-dir``, then ``$CNNLAB_DATA``, then ``./data``.

Each dataset has a few accepted layouts (cnnlab's own folder names, which
match ``../shared/datasets``, and torchvision's). A standard dataset that is
found nowhere is downloaded (:mod:`cnnlab.data.download`) unless
``CNNLAB_OFFLINE=1``; offline, or for a dataset cnnlab cannot download, it is
an error naming every path tried, the files expected there and the ways out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.data import download as remote
from cnnlab.data.idx import read_idx
from cnnlab.data.registry import canonical_name
from cnnlab.errors import CnnlabError

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass(frozen=True)
class DatasetLayout:
    """Where a dataset may live under a data root and how to recognise it."""

    folders: tuple[str, ...]  # candidate sub-folders of a data root
    required: tuple[str, ...]  # entries that must exist inside (an IDX file may also be .gz)
    kind: str  # idx | cifar | folder | voc


LAYOUTS: dict[str, DatasetLayout] = {
    "mnist": DatasetLayout(("mnist", "MNIST/raw"), IDX_FILES, "idx"),
    "fashion-mnist": DatasetLayout(("fashion-mnist", "FashionMNIST/raw"), IDX_FILES, "idx"),
    "cifar10": DatasetLayout(("cifar-10-batches-py",), ("data_batch_1", "test_batch", "batches.meta"), "cifar"),
    "cifar100": DatasetLayout(("cifar-100-python",), ("train", "test", "meta"), "cifar"),
    "cifar10-jpeg": DatasetLayout(("cifar10-jpeg",), ("train", "test"), "folder"),
    "imagenette-160": DatasetLayout(("imagenette-160",), ("train", "val"), "folder"),
    "raccoon": DatasetLayout(("raccoon",), ("Annotations", "JPEGImages", "ImageSets"), "voc"),
}


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The data roots searched, in order: explicit ``data_dir``, ``$CNNLAB_DATA``, ``./data``.

    An explicit ``data_dir`` that is not an existing folder is an error: the
    user named it, so falling back to another place would hide the mistake.
    """
    roots = []
    if data_dir:
        explicit = Path(data_dir)
        if not explicit.is_dir():
            what = "is not a folder" if explicit.exists() else "does not exist"
            raise CnnlabError(
                f"data directory '{data_dir}' (--data-dir / data.data_dir) {what}; give the folder that holds "
                "the datasets, or leave it out to search $CNNLAB_DATA and ./data"
            )
        roots.append(explicit)
    if os.environ.get("CNNLAB_DATA"):
        roots.append(Path(os.environ["CNNLAB_DATA"]))
    roots.append(Path("data"))
    unique: list[Path] = []
    for root in roots:  # --data-dir and $CNNLAB_DATA often name the same folder
        if not any(root.resolve() == seen.resolve() for seen in unique):
            unique.append(root)
    return unique


def _has(folder: Path, entry: str, kind: str) -> bool:
    if kind == "idx":
        return (folder / entry).is_file() or (folder / f"{entry}.gz").is_file()
    return (folder / entry).exists()


def find_dataset_dir(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The folder holding dataset ``name``; downloaded if missing (online); else an error listing every place tried.

    A ``data_dir`` that itself is the dataset folder (holds the files
    directly) is accepted too. A standard dataset found nowhere is downloaded
    (:mod:`cnnlab.data.download`, checksums verified) unless ``download`` is
    false or ``CNNLAB_OFFLINE=1``.
    """
    name = canonical_name(name)
    if name not in LAYOUTS:
        raise CnnlabError(f"dataset '{name}' is located by data.root, not searched for")
    layout = LAYOUTS[name]
    roots = search_roots(data_dir)
    for root in roots:
        for candidate in [root / f for f in layout.folders] + [root]:
            if all(_has(candidate, entry, layout.kind) for entry in layout.required):
                return candidate
    if download and remote.downloadable(name) and not remote.offline():
        return remote.download_dataset(name, layout.folders[0], roots)
    if layout.required == IDX_FILES:  # the four MNIST-style names, in shell brace notation
        expected = "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"
    else:
        expected = ", ".join(layout.required)
    way_out = ""
    if remote.downloadable(name) and remote.offline():
        way_out = f", or unset CNNLAB_OFFLINE (now '{os.environ.get('CNNLAB_OFFLINE')}') to download it"
    elif remote.downloadable(name) and not download:
        way_out = ", or set data.download=true to download it"
    # Name each root once, with the sub-folders tried in it: long paths times three
    # candidates per root would push the fix off the end of a one-line error.
    places = ", ".join(str(root) for root in roots)
    inside = ", ".join(f"{f}/" for f in layout.folders)
    raise CnnlabError(
        f"dataset '{name}' not found in {places} (in {inside} or directly); expected {expected}; "
        f"set CNNLAB_DATA=DIR or pass --data-dir DIR to a folder holding them{way_out}"
    )


def _idx_path(folder: Path, stem: str) -> Path:
    plain = folder / stem
    return plain if plain.is_file() else folder / f"{stem}.gz"


def load_idx_dataset(name: str, data_dir: str | os.PathLike | None = None):
    """MNIST-style dataset as NumPy uint8 arrays ``(train_x (N,28,28), train_y, test_x, test_y)``.

    >>> tx, ty, vx, vy = load_idx_dataset("mnist")  # doctest: +SKIP
    """
    folder = find_dataset_dir(name, data_dir)
    arrays = [read_idx(_idx_path(folder, stem)) for stem in IDX_FILES]
    train_x, train_y, test_x, test_y = arrays
    for images, labels, split in ((train_x, train_y, "train"), (test_x, test_y, "test")):
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise CnnlabError(
                f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match; "
                "expected (N, H, W) images and N labels"
            )
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise CnnlabError(f"{folder}: {split} images/labels are stored as {images.dtype}/{labels.dtype}; "
                              "expected uint8 IDX files (type code 0x08)")
        if len(labels) and int(labels.max()) > 9:
            raise CnnlabError(f"{folder}: {split} labels go up to {int(labels.max())}; expected classes 0-9; "
                              "the labels file is damaged, re-copy it")
    return train_x, train_y.astype(np.int64), test_x, test_y.astype(np.int64)
