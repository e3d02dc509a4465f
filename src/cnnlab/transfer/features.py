"""Cached backbone features: run the frozen backbone once, train heads from disk many times.

``cnnlab features RUN_DIR|MODEL --data PRESET --out DIR`` writes::

    DIR/meta.json        key, backbone, data, transform, feature size, counts
    DIR/train_x.npy      (N_train, D) float32, read memory-mapped
    DIR/train_y.npy      (N_train,) int64
    DIR/test_x.npy, DIR/test_y.npy

A feature is the backbone's output (``model.features``, or its children up to
``--layer``) globally average-pooled to one vector per image: (N, C, h, w) -> (N, C),
exactly what a pool-then-linear head sees. The images go through the backbone's
own transform first: channels converted (grey -> RGB by repetition, RGB -> grey by
luminance), resized to the backbone's input size, scaled to [0, 1] and normalised
with the backbone's statistics (a run's mean/std; else the data's training split).

The cache is keyed by a sha256 over the backbone's weights, the layer, the
dataset's bytes and labels, and the transform. ``cnnlab train ... model.features_from=DIR``
recomputes the key from its own data config and the recorded backbone; a cache
made for other weights, data or transform is rebuilt, with a notice, never reused.
Augmentation cannot be combined with a cache (features of augmented images would
have to be recomputed every epoch): that is an error.

>>> # cnnlab features runs/pretrain --data cifar10-jpeg --out feats/c10     # doctest: +SKIP
>>> # cnnlab train cifar10-baseline model.features_from=feats/c10 train.epochs=20   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.config import ModelConfig
from cnnlab.data.augment import BatchAugment
from cnnlab.data.datasets import ImageData, load_dataset
from cnnlab.data.loader import DeviceBatches
from cnnlab.data.pipeline import Splits, choose_train_val
from cnnlab.data.stats import channel_stats
from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_path, write_json_atomic
from cnnlab.models import create_model
from cnnlab.models.base import ImageClassifier
from cnnlab.models.inference import inference_copy
from cnnlab.models.weights import weights_digest
from cnnlab.rundir import check_out_dir, is_run_dir, open_run_dir
from cnnlab.runs import load_run

FORMAT = "cnnlab-features"
FORMAT_VERSION = 1
SPLITS = ("train", "test")


class FeatureHead(ImageClassifier):
    """A linear probe (``hidden=0``) or a one-hidden-layer MLP over feature vectors (N, D) or (N, D, 1, 1)."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.default_input_size = (in_features, 1, 1)
        self.features = nn.Flatten(1)  # (N, D, 1, 1) -> (N, D)
        if hidden:
            self.head = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, num_classes))
        else:
            self.head = nn.Sequential(nn.Linear(in_features, num_classes))


# ----------------------------------------------------------------------------- the backbone


@dataclass
class Backbone:
    """A frozen feature extractor with the transform its inputs need."""

    model: nn.Module  # eval mode, CPU
    input_size: tuple[int, int, int]  # (C, H, W) it takes
    mean: list[float] | None  # its own normalisation (None: use the data's)
    std: list[float] | None
    spec: dict[str, Any]  # how to build it again (recorded in meta.json)
    layer: str | None = None  # a stage of model.features to stop after (None: forward_features)

    def __post_init__(self) -> None:
        # What computes the features: batch norm folded and channels-last (cnnlab.models.inference:
        # 2-3x the old NCHW path on Lite0 here); self.model stays as loaded, for its digest.
        self.fast = inference_copy(self.model)
        self.stages: list[nn.Module] = []
        if self.layer is not None:
            children = list(self.fast.features.named_children())
            names = [n for n, _ in children]
            if self.layer not in names:
                raise CnnlabError(f"--layer {self.layer!r} is not a stage of the backbone; use one of "
                                  f"{', '.join(names)}")
            self.stages = [m for _, m in children[: names.index(self.layer) + 1]]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Prepared images (N, C, H, W) -> pooled features (N, D)."""
        x = x.contiguous(memory_format=torch.channels_last)
        if self.layer is None:
            out = self.fast.forward_features(x)
        else:
            out = x
            for stage in self.stages:
                out = stage(out)
        if out.ndim == 4:
            out = out.mean(dim=(2, 3))  # global average pool: (N, C, h, w) -> (N, C)
        return out.flatten(1)


def load_backbone(spec: dict[str, Any], layer: str | None = None) -> Backbone:
    """``{"run": DIR}`` or ``{"model": NAME, "options": {...}}`` -> :class:`Backbone` in eval mode."""
    if "run" in spec:
        run = load_run(spec["run"])
        model, size, mean, std = run.model, run.input_size, run.mean, run.std
    else:
        options = dict(spec.get("options") or {})
        model = create_model(spec["model"], **options)
        size = tuple(model.default_input_size)
        norm = getattr(model, "default_normalization", None)
        meta = getattr(model, "weights_meta", {}) or {}
        if meta.get("mean") is not None:
            norm = (meta["mean"], meta["std"])
        mean, std = (list(norm[0]), list(norm[1])) if norm else (None, None)
    model.eval()
    return Backbone(model, tuple(size), mean, std, spec, layer)


def backbone_spec(source: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """A run directory, or a model name whose options are the ``model.*`` overrides."""
    if Path(source).is_dir():
        return {"run": str(Path(source).resolve())}
    options = {k[len("model."):]: v for k, v in overrides.items() if k.startswith("model.")}
    if isinstance(options.get("weights"), str) and options["weights"] != "download":
        options["weights"] = str(Path(options["weights"]).resolve())
    return {"model": source, "options": options}


def prepare_images(x: torch.Tensor, backbone: Backbone, mean, std) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the backbone's input: channels, size, [0, 1], normalised."""
    c, h, w = backbone.input_size
    x = x.float().div_(255.0)
    if x.shape[1] == 1 and c == 3:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] == 3 and c == 1:  # ITU-R 601 luminance, as Pillow's "L"
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if x.shape[2:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    if mean is not None:
        x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    return x


# ----------------------------------------------------------------------------- keys


def data_digest(data) -> str:
    """sha256 of a loaded dataset's images, labels and class names."""
    h = hashlib.sha256()
    for t in (data.train_x, data.train_y, data.test_x, data.test_y):
        t = t.contiguous()
        h.update(f"{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.numpy().tobytes())
    h.update(json.dumps(list(data.classes)).encode())
    return h.hexdigest()


def cache_key(weights: str, layer: str | None, data: str, transform: dict[str, Any]) -> str:
    text = json.dumps({"weights": weights, "layer": layer, "data": data, "transform": transform}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _transform(backbone: Backbone, mean, std) -> dict[str, Any]:
    return {"input_size": list(backbone.input_size), "mean": mean, "std": std, "resize": "bilinear-antialias",
            "pool": "global-average"}


def _stats(backbone: Backbone, data) -> tuple[list[float] | None, list[float] | None]:
    """The backbone's normalisation, or (when it has none) the data's training-split statistics."""
    if backbone.mean is not None:
        return backbone.mean, backbone.std
    probe = prepare_images(data.train_x[:1], backbone, None, None)  # the channel count the backbone sees
    if probe.shape[1] == data.train_x.shape[1]:
        return channel_stats(data.train_x)
    return None, None


def read_meta(out: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


# ----------------------------------------------------------------------------- building


def build_cache(spec: dict[str, Any], data_cfg, out: str | Path, *, layer: str | None = None,
                overwrite: bool = False, batch_size: int = 16, data=None,
                notice: Callable[[str], None] | None = None, inputs=()) -> dict[str, Any]:
    """Compute (or reuse, when its key matches) the feature cache in ``out``; return its meta.

    A cache is rebuilt in place when its key no longer matches (it is a cache: only a
    ``features`` folder cnnlab made is ever rebuilt); any other existing ``out`` follows the one
    output policy (``kind="features"``, never one of ``inputs``, such as the backbone's run).
    """
    say = notice or (lambda text: print(text, file=sys.stderr, flush=True))
    out = Path(out)
    if BatchAugment(data_cfg.augment).active:
        raise CnnlabError("data.augment is on, but cached features are computed once from unaugmented images; "
                          "turn augmentation off (data.augment.*=0) or train the backbone live")
    existing = read_meta(out) if out.is_dir() else None
    if existing is None or not is_run_dir(out):
        check_out_dir(out, overwrite, kind="features", inputs=inputs)  # nothing loaded yet: one not ours fails now
    else:
        check_out_dir(out, True, kind="features", inputs=inputs)  # a cache of ours: reused or rebuilt
    backbone = load_backbone(spec, layer)
    data = data if data is not None else load_dataset(data_cfg)
    mean, std = _stats(backbone, data)
    transform = _transform(backbone, mean, std)
    weights_sha, data_sha = weights_digest(backbone.model), data_digest(data)  # once: data_digest hashes every image
    key = cache_key(weights_sha, layer, data_sha, transform)
    if existing is not None:
        if existing.get("key") == key and all((out / f"{s}_{p}.npy").is_file() for s in SPLITS for p in "xy"):
            say(f"feature cache {out} is up to date (key {key[:12]}); reused")
            return existing
        what = [w for w, same in (("weights", existing.get("weights_digest") == weights_sha),
                                  ("data", existing.get("data_digest") == data_sha),
                                  ("transform", existing.get("transform") == transform),
                                  ("layer", existing.get("layer") == layer)) if not same]
        say(f"notice: feature cache {out} was made for other {', '.join(what) or 'inputs'}; rebuilding it")
        overwrite = True
    t0 = time.perf_counter()
    with open_run_dir(out, overwrite=overwrite, kind="features", inputs=inputs):
        dims = None
        counts = {}
        for split in SPLITS:
            images = getattr(data, f"{split}_x")
            labels = getattr(data, f"{split}_y")
            n = len(images)
            with atomic_path(out / f"{split}_x.npy") as tmp:
                array = None
                for start in range(0, n, batch_size):
                    x = prepare_images(images[start:start + batch_size], backbone, mean, std)
                    f = backbone(x).numpy().astype(np.float32)  # (B, D)
                    if array is None:
                        dims = f.shape[1]
                        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, dims))
                    array[start:start + len(f)] = f
                array.flush()
                del array
            with atomic_path(out / f"{split}_y.npy") as tmp:
                np.save(tmp, labels.numpy().astype(np.int64))
            counts[split] = n
        seconds = time.perf_counter() - t0
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "key": key, "backbone": spec, "layer": layer,
                "weights_digest": weights_sha, "data_digest": data_sha,
                "dataset": data.name, "classes": list(data.classes), "transform": transform,
                "feature_dim": dims, "counts": counts, "seconds": round(seconds, 3)}
        write_json_atomic(out / "meta.json", meta)
    say(f"features: {counts['train']} train + {counts['test']} test images -> {dims}-d vectors in "
        f"{seconds:.1f}s -> {out}")
    return meta


# ----------------------------------------------------------------------------- training from a cache

def refuse_augment(cfg) -> None:
    if BatchAugment(cfg.data.augment).active:
        raise CnnlabError("model.features_from trains on cached features of unaugmented images; data.augment "
                          "cannot apply to them: set the data.augment.* keys to 0 (or drop model.features_from)")


HEAD_NAME = "feature_head"  # the model.name a run trained with model.features_from records
HEAD_OPTIONS = ("features_from", "head_hidden")


def head_config(cfg, notice: Callable[[str], None] | None = None):
    """``cfg`` with the model section a cached-features run really trains: :class:`FeatureHead`.

    The preset's ``model.name`` and its options do not apply to a head over cached features; the
    run's ``config.yaml`` records ``model.name: feature_head`` and the head's own options only, and
    a notice names what was dropped, so the config never claims a network that did not run.

    >>> from cnnlab.config import load_config
    >>> head_config(load_config("mnist-fast", ["model.features_from=feats/mnist"])).model  # doctest: +SKIP
    ModelConfig(name='feature_head', options={'features_from': 'feats/mnist'})
    """
    import dataclasses

    refuse_augment(cfg)  # before the notice: an error comes alone
    options = cfg.model.options
    if "features_from" in options and read_meta(Path(str(options["features_from"]))) is None:
        raise not_a_cache(Path(str(options["features_from"])))
    if "features_from" not in options or (cfg.model.name == HEAD_NAME and set(options) <= set(HEAD_OPTIONS)):
        return cfg
    dropped = [f"model.{k}" for k in options if k not in HEAD_OPTIONS]
    if notice is not None:
        what = f"model.name={cfg.model.name}" + (f" and {', '.join(dropped)}" if dropped else "")
        notice(f"notice: model.features_from trains a head over the cached features; {what} do not apply "
               "and are not recorded")
    model = ModelConfig(HEAD_NAME, {k: options[k] for k in HEAD_OPTIONS if k in options})
    return dataclasses.replace(cfg, model=model)


class FeatureBatches(DeviceBatches):
    """Batches of cached features: like :class:`~cnnlab.data.loader.DeviceBatches` without conversion."""

    def prepare(self, raw: torch.Tensor, y, epoch: int = 0, batch: int = 0, index=None):
        return raw, y  # (B, D, 1, 1) float32 features: nothing to convert, augment or normalise


def load_cache(out: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """meta and the memory-mapped arrays."""
    meta = read_meta(out)
    if meta is None:
        raise CnnlabError(f"{out} is not a feature cache (no meta.json); make one with `cnnlab features`")
    arrays = {}
    for split in SPLITS:
        for part in "xy":
            path = out / f"{split}_{part}.npy"
            try:
                arrays[f"{split}_{part}"] = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise CnnlabError(f"feature cache {out}: cannot read {path.name} ({exc}); rebuild it with "
                                  "`cnnlab features ... --overwrite`") from None
    return meta, arrays


def not_a_cache(out: Path) -> CnnlabError:
    """The one line for ``model.features_from=DIR`` naming no cache; it never suggests writing into DIR."""
    if (out / "config.yaml").is_file():  # a training run: the backbone, not its features
        return CnnlabError(f"model.features_from={out} is a training run, not a feature cache; cache its features "
                           f"with `cnnlab features {out} --data PRESET --out NEW_DIR`, then train with "
                           "model.features_from=NEW_DIR")
    if out.exists():
        return CnnlabError(f"model.features_from={out} is not a feature cache (no meta.json from `cnnlab features`); "
                           "make one with `cnnlab features RUN_DIR --data PRESET --out NEW_DIR`")
    return CnnlabError(f"model.features_from={out} does not exist; make a feature cache there with "
                       f"`cnnlab features RUN_DIR --data PRESET --out {out}`")


def feature_splits(cfg, device: torch.device, data=None, notice: Callable[[str], None] | None = None):
    """(data, splits) for ``model.features_from=DIR``: the cache checked against ``cfg.data`` (rebuilt if stale)."""
    say = notice or (lambda text: None)
    out = Path(cfg.model.options["features_from"])
    refuse_augment(cfg)
    meta = read_meta(out)
    if meta is None:
        raise not_a_cache(out)
    # The key is recomputed from this run's data and the recorded backbone: stale caches are rebuilt.
    build_cache(meta["backbone"], cfg.data, out, layer=meta.get("layer"), data=data, notice=say)
    meta, arrays = load_cache(out)

    def tensor(name: str) -> torch.Tensor:
        array = np.asarray(arrays[name])
        t = torch.from_numpy(array.copy())
        return t.view(len(t), -1, 1, 1) if name.endswith("_x") else t  # (N, D, 1, 1)

    train_x, train_y, test_x, test_y = (tensor(n) for n in ("train_x", "train_y", "test_x", "test_y"))
    dc = cfg.data
    seed = cfg.train.seed
    # The same subset and validation split as the images would get (data.pipeline).
    (train_x, train_y), val = choose_train_val(train_x, train_y, test_x, test_y, dc, seed)
    val_x, val_y = val if val is not None else (None, None)

    def batches(x, y, train: bool):
        return FeatureBatches(x.to(device), y.to(device), dc.batch_size if train else dc.eval_batch_size,
                              shuffle=train, drop_last=train, seed=seed)

    counts = {"train": len(train_x), "val": 0 if val_x is None else len(val_x), "test": len(test_x)}
    splits = Splits(batches(train_x, train_y, True), None if val_x is None else batches(val_x, val_y, False),
                    batches(test_x, test_y, False), None, None, counts)
    # (N, D, 1, 1) feature vectors in the images' place: input_size is (D, 1, 1).
    fdata = ImageData(f"{meta['dataset']} (cached features, {meta['feature_dim']}-d)", train_x, train_y,
                        test_x, test_y, list(meta["classes"]))
    return fdata, splits
