"""Detection data resident on the device: :func:`load_detection_data` -> :class:`DetectionSplits`.

Mirrors :mod:`cnnlab.data.pipeline` for classification: every image is decoded once,
letterboxed to ``data.image_size`` (aspect kept, the rest padded with black), kept as uint8
on the device with its boxes; the training split's per-channel mean/std is computed; a
validation split is held out of the training images (``data.val``, ``data.val_fraction``,
seeded by ``train.seed``).

>>> from cnnlab.config import load_config
>>> cfg = load_config(None, ["task=detect", "data.name=raccoon", "data.image_size=128"])
>>> splits = load_detection_data(cfg)  # doctest: +SKIP
>>> splits.train.images.shape, splits.classes  # doctest: +SKIP
(torch.Size([144, 3, 128, 128]), ['raccoon'])

Letterboxed coordinates relate to the original image's pixels by
``letterboxed = original * scale + pad`` (both axes, one scale), so predictions map back
with :func:`unletterbox_boxes`.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from cnnlab.config import Config, DataConfig
from cnnlab.data import folder as folders
from cnnlab.data.annotations import Annotation, Problems, check_boxes, load_json
from cnnlab.data.cache import cache_file, cached_arrays
from cnnlab.data.registry import dataset_names, get_dataset
from cnnlab.data.stats import channel_stats
from cnnlab.errors import CnnlabError

DEFAULT_IMAGE_SIZE = 256  # letterbox side for photographs when data.image_size is unset
# The detection datasets with a class list of their own (raccoon, mnist-scenes), as registered.
FIXED_CLASSES = {name: list(get_dataset(name).classes) for name in dataset_names("detect")
                 if get_dataset(name).classes}


@dataclass
class DetectionData:
    """One split, resident on a device.

    ``images`` uint8 (N, C, S, S), each image letterboxed to S x S; ``boxes[i]`` float32
    (K_i, 4) x1, y1, x2, y2 in pixels of the S x S image (K_i may be 0: a negative image);
    ``labels[i]`` int64 (K_i,); ``scale`` (N,) and ``pad`` (N, 2) = (pad_x, pad_y) with
    ``letterboxed = original * scale + pad``; ``orig_size`` int64 (N, 2) = (height, width)
    of the original image; ``paths`` the source image files.
    """

    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    scale: torch.Tensor
    pad: torch.Tensor
    orig_size: torch.Tensor
    paths: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device) -> "DetectionData":
        return DetectionData(self.images.to(device), [b.to(device) for b in self.boxes],
                             [lab.to(device) for lab in self.labels], self.scale.to(device), self.pad.to(device),
                             self.orig_size.to(device), list(self.paths))

    def subset(self, index) -> "DetectionData":
        """The items at ``index`` (a sequence of ints), in that order."""
        index = [int(i) for i in index]
        pick = torch.tensor(index, dtype=torch.long, device=self.images.device)
        return DetectionData(self.images[pick], [self.boxes[i] for i in index], [self.labels[i] for i in index],
                             self.scale[pick], self.pad[pick], self.orig_size[pick], [self.paths[i] for i in index])

    @property
    def num_boxes(self) -> int:
        return sum(int(b.shape[0]) for b in self.boxes)


@dataclass
class DetectionSplits:
    train: DetectionData
    val: Optional[DetectionData]
    test: DetectionData
    classes: list[str]
    mean: tuple[float, ...]  # per channel, of the train split, on the [0, 1] scale
    std: tuple[float, ...]
    counts: dict[str, int] = field(default_factory=dict)  # images per split and every counted problem
    source: str = ""


# ----------------------------------------------------------------------------- letterbox


def letterbox_geometry(height: int, width: int, size: int) -> tuple[float, tuple[float, float], tuple[int, int]]:
    """(scale, (pad_x, pad_y), (new_h, new_w)) that fit a height x width image into size x size.

    >>> letterbox_geometry(417, 650, 128)
    (0.19692307692307692, (0.0, 23.0), (82, 128))
    """
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    return scale, (float((size - new_w) // 2), float((size - new_h) // 2)), (new_h, new_w)


def letterbox_pil(img, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """A Pillow image -> (uint8 (C, size, size) array, scale, (pad_x, pad_y)); see :func:`letterbox`.

    Pillow's bilinear resize (antialiased when shrinking) measured ~100x faster on the CPU than
    torch's antialiased ``interpolate`` on ~650x420 photos; the loader and ``predict`` both come
    through here, so they see identical pixels.
    """
    from PIL import Image

    w, h = img.size
    scale, (pad_x, pad_y), (new_h, new_w) = letterbox_geometry(h, w, size)
    if (new_h, new_w) != (h, w):
        img = img.resize((new_w, new_h), Image.BILINEAR)
    small = np.asarray(img, dtype=np.uint8)
    small = small[:, :, None] if small.ndim == 2 else small  # (h, w, C)
    out = np.zeros((small.shape[2], size, size), dtype=np.uint8)
    top, left = int(pad_y), int(pad_x)
    out[:, top:top + new_h, left:left + new_w] = small.transpose(2, 0, 1)
    return out, scale, (pad_x, pad_y)


def letterbox(image: torch.Tensor, size: int) -> tuple[torch.Tensor, float, tuple[float, float]]:
    """Resize uint8 (C, H, W) keeping its aspect so the long side is ``size``; centre it on black.

    Returns (uint8 (C, size, size), scale, (pad_x, pad_y)); a point maps as
    ``letterboxed = original * scale + pad``. Downscaling is antialiased (Pillow's bilinear).

    >>> out, scale, pad = letterbox(torch.full((3, 10, 20), 200, dtype=torch.uint8), 8)
    >>> out.shape, scale, pad, out[0, :, 0].tolist()
    (torch.Size([3, 8, 8]), 0.4, (0.0, 2.0), [0, 0, 200, 200, 200, 200, 0, 0])
    """
    from PIL import Image

    if image.ndim != 3 or image.shape[0] not in (1, 3) or image.dtype != torch.uint8:
        raise CnnlabError(f"letterbox expects one uint8 (C, H, W) image with 1 or 3 channels, got "
                          f"{image.dtype} {tuple(image.shape)}")
    array = np.ascontiguousarray(image.cpu().numpy().transpose(1, 2, 0))  # (H, W, C)
    pil = Image.fromarray(array[:, :, 0] if image.shape[0] == 1 else array)
    out, scale, pad = letterbox_pil(pil, size)
    return torch.from_numpy(out).to(image.device), scale, pad


def unletterbox_boxes(boxes: torch.Tensor, scale: float, pad: tuple[float, float], orig_hw) -> torch.Tensor:
    """Boxes (K, 4) in letterboxed pixels -> the original image's pixels, clipped to it.

    >>> unletterbox_boxes(torch.tensor([[2.0, 4.0, 6.0, 6.0]]), 0.4, (0.0, 2.0), (10, 20)).tolist()
    [[5.0, 5.0, 15.0, 10.0]]
    """
    pad_x, pad_y = float(pad[0]), float(pad[1])
    h, w = int(orig_hw[0]), int(orig_hw[1])
    offset = torch.tensor([pad_x, pad_y, pad_x, pad_y], dtype=boxes.dtype, device=boxes.device)
    out = (boxes - offset) / float(scale)
    limit = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
    return torch.minimum(out.clamp(min=0), limit)


# ----------------------------------------------------------------------------- reading and decoding


def read_annotations(cfg: DataConfig) -> tuple[dict[str, list[Annotation]], list[str], str, Problems]:
    """(annotations per split, classes, source folder, problems so far) for a detection ``data`` config.

    The reader is the one registered under ``data.name`` (:mod:`cnnlab.data.registry`).
    """
    spec = get_dataset(cfg.name)
    if spec.task != "detect":
        names = dataset_names("detect")
        raise CnnlabError(f"'{spec.name}' is not a detection dataset; task=detect reads "
                          f"{', '.join(names[:-1])} or {names[-1]} (data.name)")
    problems = Problems(strict=cfg.strict)
    anns, classes, root = spec.load(cfg, problems)
    if not classes:
        raise CnnlabError(f"{root}: no class names found (no objects in any annotation); give data.classes=[...]")
    return anns, classes, str(root), problems


def _decode(path: Path, mode: str, size: int):
    """(letterboxed uint8 (C, size, size) array, scale, pad, (orig_h, orig_w)) of one file."""
    from PIL import Image

    with Image.open(path) as img:
        folders.refuse_bomb(img)
        img = folders.convert_mode(img, mode)
        out, scale, pad = letterbox_pil(img, size)
        return out, scale, pad, (img.size[1], img.size[0])


def probe_channels(anns: list[Annotation]) -> int:
    """1 when every sampled image is greyscale, else 3 (as for image folders)."""
    from PIL import Image

    with folders.quiet_bomb_warnings():
        for ann in anns[:: max(1, len(anns) // 64)]:
            try:
                with Image.open(ann.image) as img:
                    if img.mode not in ("L", "1", "LA", "F", *folders.WIDE_GREY_MODES):
                        return 3
            except Exception:  # noqa: BLE001 - a broken file is counted when decoded
                continue
    return 1


def build_split(anns: list[Annotation], size: int, channels: int, problems: Problems,
                split: str) -> DetectionData:
    """Decode, check boxes against the real image size, letterbox: a CPU :class:`DetectionData`."""
    mode = "L" if channels == 1 else "RGB"
    present = []
    for ann in anns:
        if ann.image.is_file():
            present.append(ann)
        else:
            problems.add("missing_images", ann.source, f"names image {ann.image}, which does not exist")
    folders.check_memory(len(present), channels, size)
    images = torch.zeros(len(present), channels, size, size, dtype=torch.uint8)
    results: list = [None] * len(present)

    def work(i: int) -> None:
        try:
            results[i] = _decode(present[i].image, mode, size)
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for a broken file
            results[i] = exc

    with folders.quiet_bomb_warnings(), ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1))) as pool:
        list(pool.map(work, range(len(present))))
    boxes, labels, scales, pads, sizes, paths, ok = [], [], [], [], [], [], []
    for i, (ann, decoded) in enumerate(zip(present, results)):
        if isinstance(decoded, Exception):
            reason = (str(decoded).strip().splitlines() or [type(decoded).__name__])[0][:200]
            problems.add("unreadable_images", str(ann.image), f"cannot decode: {reason}")
            continue
        array, scale, pad, (h, w) = decoded
        box, lab = check_boxes(ann, h, w, problems)
        images[len(ok)] = torch.from_numpy(array)
        ok.append(i)
        boxes.append(torch.from_numpy(box * scale + np.array([pad[0], pad[1], pad[0], pad[1]])).float())
        labels.append(torch.from_numpy(lab).long())
        scales.append(scale)
        pads.append(pad)
        sizes.append((h, w))
        paths.append(str(ann.image))
    if not ok:
        raise CnnlabError(f"the {split} split has no readable images ({len(anns)} annotated, "
                          f"{len(anns) - len(present)} missing); check the dataset's files")
    return DetectionData(images[:len(ok)].clone() if len(ok) < len(present) else images, boxes, labels,
                         torch.tensor(scales, dtype=torch.float32), torch.tensor(pads, dtype=torch.float32),
                         torch.tensor(sizes, dtype=torch.int64), paths)


def default_image_size(cfg: DataConfig, root: Path | None = None) -> int:
    """``data.image_size``, else for mnist-scenes the scenes' own side (from ``scenes.json``), else 256."""
    if cfg.image_size:
        return cfg.image_size
    if cfg.name == "mnist-scenes":
        manifest = (root / "scenes.json") if root is not None else None
        if manifest is not None and manifest.is_file():
            size = load_json(manifest, "scenes manifest").get("params", {}).get("size")
            if isinstance(size, int) and 1 <= size <= 4096:
                return size
        return cfg.scenes.size
    return DEFAULT_IMAGE_SIZE


CACHE_FORMAT = 1  # bump when decoding or letterboxing changes, so old caches are not reused


def split_key(anns: list[Annotation], size: int, channels: int, classes: list[str]) -> str | None:
    """Hash of everything a decoded split depends on: each image's path, size and mtime, its parsed
    boxes and labels, and the options. None when an image is missing (that split is never cached)."""
    digest = hashlib.sha256(f"detection-cache={CACHE_FORMAT} size={size} channels={channels} "
                            f"classes={classes!r}\n".encode())
    for ann in anns:
        try:
            st = ann.image.stat()
        except OSError:
            return None
        digest.update(f"{ann.image}\t{st.st_size}\t{st.st_mtime_ns}\t{ann.normalized}\t{ann.size}\n".encode())
        digest.update(np.ascontiguousarray(ann.boxes, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(ann.labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:24]


def cached_split(anns: list[Annotation], size: int, channels: int, classes: list[str],
                 problems: Problems, split: str, cache_dir: Path) -> DetectionData:
    """:func:`build_split` through the decoded-image cache (:mod:`cnnlab.data.cache`), as for image folders.

    The letterboxed images and their boxes are saved as one ``.npz`` under
    ``cache_dir/detection/<key>.npz``; any change to an image file or to an annotation changes
    the key. A split that had any counted problem is not cached, so its warnings (or, when
    strict, its error) come back on every load. A damaged or unwritable cache is just rebuilt.
    """
    before = dict(problems.counts)
    return cached_arrays(cache_file(cache_dir, "detection", split_key(anns, size, channels, classes)),
                         lambda: build_split(anns, size, channels, problems, split),
                         encode=_split_arrays, decode=_split_from_arrays,
                         store=lambda data: problems.counts == before)


def _split_arrays(data: DetectionData) -> dict[str, np.ndarray]:
    """The arrays of the cache file: ragged boxes and labels concatenated, with a count per image."""
    return {"images": data.images.numpy(), "per_image": np.array([len(b) for b in data.boxes], dtype=np.int64),
            "boxes": torch.cat(data.boxes).reshape(-1, 4).numpy(), "labels": torch.cat(data.labels).numpy(),
            "scale": data.scale.numpy(), "pad": data.pad.numpy(), "orig_size": data.orig_size.numpy(),
            "paths": np.array(data.paths, dtype=str)}


def _split_from_arrays(z) -> DetectionData:
    per_image = z["per_image"].tolist()
    boxes = torch.from_numpy(z["boxes"]).split(per_image)
    labels = torch.from_numpy(z["labels"]).split(per_image)
    return DetectionData(torch.from_numpy(z["images"]), list(boxes), list(labels), torch.from_numpy(z["scale"]),
                         torch.from_numpy(z["pad"]), torch.from_numpy(z["orig_size"]), [str(p) for p in z["paths"]])


def read_detection_dataset(cfg: DataConfig) -> tuple[DetectionData, DetectionData, list[str], dict[str, int], str]:
    """(train, test, classes, problem counts, source) on the CPU, problems warned once."""
    anns, classes, source, problems = read_annotations(cfg)
    size = default_image_size(cfg, Path(source))
    channels = cfg.channels or probe_channels(anns["train"])
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else folders.default_cache_dir()
    train = cached_split(anns["train"], size, channels, classes, problems, "train", cache_dir)
    test = cached_split(anns["test"], size, channels, classes, problems, "test", cache_dir)
    problems.warn(Path(source).name or source)
    counts = dict(problems.counts)
    counts["images_without_boxes"] = sum(int(b.shape[0] == 0) for d in (train, test) for b in d.boxes)
    return train, test, classes, counts, source


# ----------------------------------------------------------------------------- splits


def choose_detection_split(n: int, cfg: DataConfig, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(train indices, validation indices or None) after ``limit_train`` and the validation choice.

    ``limit_train=N`` keeps N training images drawn at random; ``val=split`` holds out
    ``round(val_fraction * N)`` (at least 1) images at random; ``val=test`` and ``val=none``
    hold out none (the caller validates on the test split, or not at all). Seeded by ``seed``.
    """
    rng = np.random.default_rng(seed)
    index = np.arange(n)
    if cfg.limit_train and cfg.limit_train < n:
        index = np.sort(rng.permutation(n)[:cfg.limit_train])
    if cfg.final_fit or cfg.val != "split":
        return index, None
    held = max(1, int(round(cfg.val_fraction * len(index))))
    if held >= len(index):
        raise CnnlabError(f"the validation split would take all {len(index)} training images; lower "
                          "data.val_fraction, or set data.val=none (or data.val=test)")
    order = rng.permutation(len(index))
    return np.sort(index[order[held:]]), np.sort(index[order[:held]])


@dataclass
class DetectionSource:
    """A detection dataset read once on the CPU, before a run's own split choice: what many runs share
    (an ablation's variants, a sweep's trials) and what cross-validation deals into folds."""

    train: DetectionData
    test: DetectionData
    classes: list[str]
    counts: dict[str, int]
    source: str

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.train.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def fold(self, train_index, held_index) -> "DetectionSource":
        """The training images at ``train_index`` as the training split and those at ``held_index`` as the test split."""
        train, test = self.train.subset(train_index), self.train.subset(held_index)
        counts = {**self.counts, "images_without_boxes": sum(int(b.shape[0] == 0) for d in (train, test)
                                                             for b in d.boxes)}
        return DetectionSource(train, test, list(self.classes), counts, self.source)


def read_detection_source(cfg: DataConfig) -> DetectionSource:
    """:func:`read_detection_dataset` as one :class:`DetectionSource`."""
    return DetectionSource(*read_detection_dataset(cfg))


def load_detection_data(cfg: Config, device: torch.device | str = "cpu",
                        source: DetectionSource | None = None) -> DetectionSplits:
    """Read (or take ``source``, already read), letterbox and split the detection dataset of ``cfg.data``;
    everything on ``device``."""
    data = cfg.data
    if source is None:
        source = read_detection_source(data)
    train, test, classes, counts = source.train, source.test, list(source.classes), dict(source.counts)
    source = source.source
    keep, held = choose_detection_split(len(train), data, cfg.train.seed)
    val = None
    if held is not None:
        val = train.subset(held)
    elif data.val == "test" and not data.final_fit:
        val = test
    train = train.subset(keep) if len(keep) < len(train) else train
    mean, std = channel_stats(train.images)
    counts = {"train": len(train), "val": 0 if val is None else len(val), "test": len(test),
              "train_boxes": train.num_boxes, "test_boxes": test.num_boxes, **counts}
    device = torch.device(device)
    return DetectionSplits(train.to(device), None if val is None else val.to(device), test.to(device), classes,
                           tuple(mean), tuple(std), counts, source)
