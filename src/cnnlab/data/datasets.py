"""Load any supported dataset into uint8 tensors: :func:`load_dataset`.

>>> from cnnlab.config import DataConfig
>>> data = load_dataset(DataConfig(name="mnist"))  # doctest: +SKIP
>>> data.train_x.shape, data.train_x.dtype  # doctest: +SKIP
(torch.Size([60000, 1, 28, 28]), torch.uint8)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnlab.config import DataConfig
from cnnlab.data import folder as folders
from cnnlab.data.cifar import load_cifar
from cnnlab.data.locate import LAYOUTS, canonical_name, find_dataset_dir, load_idx_dataset, search_roots
from cnnlab.data.splits import stratified_split
from cnnlab.errors import CnnlabError

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot"]


@dataclass
class ImageData:
    """A dataset held in memory: images (N, C, H, W) uint8 and labels (N,) int64."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]
    source: str = ""
    skipped: list[str] = field(default_factory=list)  # unreadable files left out

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_dataset(cfg: DataConfig) -> ImageData:
    """Read the dataset named by ``cfg.name`` (searching the data roots) into memory."""
    name = canonical_name(cfg.name)
    if name == "folder":
        if not cfg.root:
            raise CnnlabError("data.name=folder needs data.root=PATH, a folder with one sub-folder per class")
        return _load_folder_dataset(Path(cfg.root), cfg, "folder")
    try:
        location = find_dataset_dir(name, cfg.data_dir)
    except CnnlabError:
        if not cfg.download:
            raise
        location = _download(name, cfg)
    kind = LAYOUTS[name].kind
    if kind == "idx":
        train_x, train_y, test_x, test_y = load_idx_dataset(name, location)
        classes = FASHION_CLASSES if name == "fashion-mnist" else [str(i) for i in range(10)]
        return ImageData(name, torch.from_numpy(train_x).unsqueeze(1), torch.from_numpy(train_y),
                         torch.from_numpy(test_x).unsqueeze(1), torch.from_numpy(test_y), classes, str(location))
    if kind == "cifar":
        train_x, train_y, test_x, test_y, classes = load_cifar(location, 10 if name == "cifar10" else 100)
        return ImageData(name, torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(test_x),
                         torch.from_numpy(test_y), classes, str(location))
    return _load_folder_dataset(location, cfg, name)


def _load_folder_dataset(root: Path, cfg: DataConfig, name: str) -> ImageData:
    if not root.is_dir():
        raise CnnlabError(f"image folder '{root}' does not exist; give data.root=PATH to a folder of class folders")
    train_dir, test_dir = folders.split_folders(root)
    classes = folders.list_classes(train_dir)
    if len(classes) < 2:
        raise CnnlabError(
            f"{train_dir} has {len(classes)} class folder(s) with images; a classifier needs at least 2 "
            "(layout: ROOT/<class>/<image>.png or ROOT/train/<class>/...)"
        )
    items = folders.list_images(train_dir, classes)
    side, grey = folders.probe(items)
    size = cfg.image_size or side
    channels = cfg.channels or (1 if grey else 3)
    mode = "L" if channels == 1 else "RGB"
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else None
    train = folders.load_folder_split(train_dir, classes, size, cfg.resize, mode, cfg.strict, cache_dir)
    if test_dir is not None:
        test = folders.load_folder_split(test_dir, classes, size, cfg.resize, mode, cfg.strict, cache_dir)
        train_x, train_y, test_x, test_y = train.images, train.labels, test.images, test.labels
        skipped = train.skipped + test.skipped
    else:  # one pool of images: hold out a stratified test split with a fixed seed
        keep, held = stratified_split(train.labels, cfg.test_fraction, seed=12345)
        train_x, train_y = train.images[keep], train.labels[keep]
        test_x, test_y = train.images[held], train.labels[held]
        skipped = train.skipped
    if len(train_x) == 0:
        raise CnnlabError(f"no readable training images under {train_dir}")
    return ImageData(name, torch.from_numpy(np.ascontiguousarray(train_x)), torch.from_numpy(train_y),
                     torch.from_numpy(np.ascontiguousarray(test_x)), torch.from_numpy(test_y),
                     readable_class_names(root, classes), str(root), skipped)


def readable_class_names(root: Path, folders_: list[str]) -> list[str]:
    """Folder names, replaced by the names in ``root/classes.tsv`` (``folder<TAB>name`` lines) if present.

    Imagenette's folders are WordNet ids (n01440764); its classes.tsv names them (tench).
    """
    table = root / "classes.tsv"
    if not table.is_file():
        return folders_
    names = {}
    for line in table.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0].strip():
            names[parts[0].strip()] = parts[1].strip()
    return [names.get(f, f) for f in folders_]


def _download(name: str, cfg: DataConfig) -> Path:
    """Opt-in download through torchvision (online users only; tests never call this)."""
    import torchvision.datasets as tvd

    root = Path(cfg.data_dir or search_roots()[0])
    makers = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}
    if name not in makers:
        raise CnnlabError(f"dataset '{name}' cannot be downloaded by cnnlab; place it under {root} yourself")
    for train in (True, False):
        makers[name](str(root), train=train, download=True)
    return find_dataset_dir(name, root)
