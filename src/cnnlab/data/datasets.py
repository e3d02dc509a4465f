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
from cnnlab.data.locate import find_dataset_dir, load_idx_dataset
from cnnlab.data.registry import get_dataset, register_dataset
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
    """Read the dataset named by ``cfg.name`` (searching the data roots) into memory.

    The reader is the one registered under that name (:mod:`cnnlab.data.registry`).
    """
    spec = get_dataset(cfg.name)
    if spec.task != "classify":
        raise CnnlabError(f"'{spec.name}' is an object-detection dataset (boxes, not one class per image); "
                          "set task=detect (or use a detect-* preset), or choose a classification dataset")
    return spec.load(cfg, spec.name)


@register_dataset("folder", task="classify")
def load_folder(cfg: DataConfig, name: str) -> ImageData:
    """``data.name=folder``: the image folder at ``data.root`` (one sub-folder per class)."""
    if not cfg.root:
        raise CnnlabError("data.name=folder needs data.root=PATH, a folder with one sub-folder per class")
    return _load_folder_dataset(Path(cfg.root), cfg, name)


@register_dataset("mnist", task="classify")
@register_dataset("fashion-mnist", task="classify", aliases=("fashion_mnist", "fashion"))
def load_idx(cfg: DataConfig, name: str) -> ImageData:
    """MNIST and Fashion-MNIST from their IDX files, found under the data roots (or downloaded)."""
    location = find_dataset_dir(name, cfg.data_dir, download=cfg.download)  # unless offline or download=false
    train_x, train_y, test_x, test_y = load_idx_dataset(name, location)
    classes = FASHION_CLASSES if name == "fashion-mnist" else [str(i) for i in range(10)]
    return ImageData(name, torch.from_numpy(train_x).unsqueeze(1), torch.from_numpy(train_y),
                     torch.from_numpy(test_x).unsqueeze(1), torch.from_numpy(test_y), classes, str(location))


@register_dataset("cifar10", task="classify", aliases=("cifar-10",))
@register_dataset("cifar100", task="classify", aliases=("cifar-100",))
def load_cifar_dataset(cfg: DataConfig, name: str) -> ImageData:
    """CIFAR-10 and CIFAR-100 from their python batches, found under the data roots (or downloaded)."""
    location = find_dataset_dir(name, cfg.data_dir, download=cfg.download)
    train_x, train_y, test_x, test_y, classes = load_cifar(location, 10 if name == "cifar10" else 100)
    return ImageData(name, torch.from_numpy(train_x), torch.from_numpy(train_y), torch.from_numpy(test_x),
                     torch.from_numpy(test_y), classes, str(location))


@register_dataset("cifar10-jpeg", task="classify", aliases=("cifar10_jpeg",))
@register_dataset("imagenette-160", task="classify", aliases=("imagenette",))
def load_standard_folder(cfg: DataConfig, name: str) -> ImageData:
    """The standard datasets kept as image folders (train/ and test/ or val/), found under the data roots."""
    return _load_folder_dataset(find_dataset_dir(name, cfg.data_dir, download=cfg.download), cfg, name)


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
    names = readable_class_names(root, classes)
    check_class_counts(names, classes, train_y, test_y, skipped, test_dir is None)
    return ImageData(name, torch.from_numpy(np.ascontiguousarray(train_x)), torch.from_numpy(train_y),
                     torch.from_numpy(np.ascontiguousarray(test_x)), torch.from_numpy(test_y),
                     names, str(root), skipped)


def check_class_counts(names: list[str], folders_: list[str], train_y: np.ndarray, test_y: np.ndarray,
                       skipped: list[str], pooled: bool) -> None:
    """Refuse a split or a class that would make the reported numbers meaningless.

    An empty test split reports "accuracy 0.0000" on nothing, and a class with
    no training images (all unreadable, say) is a class the model can never
    predict: both are errors naming the class and the counts.
    """
    if len(test_y) == 0:
        how = ("each class needs at least 2 images so that one can be held out" if pooled
               else "put images into the test/val folder's class folders")
        raise CnnlabError(f"the test split is empty ({len(train_y)} training images in {len(names)} classes, "
                          f"0 test images): the accuracy would be measured on nothing; {how}")
    train_counts = np.bincount(train_y, minlength=len(names))
    test_counts = np.bincount(test_y, minlength=len(names))
    unreadable = {f: 0 for f in folders_}
    for path in skipped:
        parent = Path(path).parent.name
        if parent in unreadable:
            unreadable[parent] += 1
    for index, (name, folder) in enumerate(zip(names, folders_)):
        n_train, n_test, bad = int(train_counts[index]), int(test_counts[index]), unreadable[folder]
        label = f"'{name}'" + (f" (folder {folder})" if name != folder else "")
        if n_train == 0:
            raise CnnlabError(
                f"class {label} has no readable training images ({n_test} test, {bad} unreadable skipped); "
                "add readable images to it or remove its folder"
            )
        if n_test == 0:
            fix = ("a class needs at least 2 images to hold one out for testing; add images to it"
                   if pooled else "add images of it to the test/val folder")
            raise CnnlabError(
                f"class {label} has no test images ({n_train} train, {bad} unreadable skipped); {fix}"
            )


def readable_class_names(root: Path, folders_: list[str]) -> list[str]:
    """Folder names, replaced by the names in ``root/classes.tsv`` (``folder<TAB>name`` lines) if present.

    Imagenette's folders are WordNet ids (n01440764); its classes.tsv names them (tench).
    """
    table = root / "classes.tsv"
    if not table.is_file():
        return folders_
    try:
        text = table.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = table.read_bytes()[:exc.start].count(b"\n") + 1
        raise CnnlabError(f"{table} line {line} is not UTF-8 text; save the file as UTF-8 "
                          "(folder<TAB>name per line)") from None
    except OSError as exc:
        raise CnnlabError(f"cannot read {table}: {exc.strerror or exc}; fix its permissions or remove it") from None
    names = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise CnnlabError(f"{table} line {number} is not 'folder<TAB>name': {line[:60]!r}; "
                              "fix or remove that line")
        names[parts[0].strip()] = parts[1].strip()
    return [names.get(f, f) for f in folders_]
