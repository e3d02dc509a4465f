"""Typed configuration: dataclasses, YAML presets, ``key=value`` overrides, strict checks.

A run is described by one :class:`Config`. Presets are YAML files shipped in
``cnnlab/presets``; any key can be overridden on the command line:

>>> cfg = load_config("mnist-fast", ["train.epochs=3", "optim.lr=0.01"])
>>> cfg.train.epochs, cfg.optim.lr
(3, 0.01)

Unknown keys, values of the wrong type and values out of range are errors
before any work starts, and an unknown key names the nearest valid one.
Model options (``model.<option>``) are free-form here and checked against the
chosen model's constructor by :func:`cnnlab.models.create_model`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from cnnlab.errors import CnnlabError, did_you_mean, short_repr
from cnnlab.rundir import check_name


@dataclass
class AugmentConfig:
    """Batched on-device augmentation; every op is off (0) by default."""

    crop_padding: int = 0  # pad then random-crop back to size, pixels per side
    crop_mode: Literal["zero", "reflect"] = "zero"
    hflip: float = 0.0  # probability of a horizontal flip
    flip_mode: Literal["random", "alternate"] = "random"  # alternate: each image flips every other epoch (airbench)
    rotate: float = 0.0  # max rotation, degrees (uniform in [-rotate, rotate])
    scale: float = 0.0  # max relative zoom (uniform in [1-scale, 1+scale])
    shear: float = 0.0  # max shear, degrees
    translate: float = 0.0  # max shift, fraction of the image size
    brightness: float = 0.0  # factor uniform in [1-b, 1+b]
    contrast: float = 0.0
    saturation: float = 0.0
    noise_std: float = 0.0  # Gaussian noise std on the [0, 1] pixel scale
    erase_prob: float = 0.0  # probability of random erasing (cutout)
    erase_size: float = 0.25  # side of the erased square, fraction of the image side
    min_box: float = 2.0  # detection: a box narrower or shorter than this (pixels) after augmenting is dropped
    # The source texts' others (cnnlab/data/augment_more.py); classification only, except hue.
    random_resized_crop: Optional[tuple[float, float]] = None  # crop area fraction range, e.g. [0.35, 1]; resized back
    resized_crop_ratio: tuple[float, float] = (0.75, 4 / 3)  # the crop's aspect-ratio range (width/height), log-uniform
    hue: float = 0.0  # hue turned uniformly in [-hue, hue] fractions of the colour wheel (RGB images)
    pca_lighting: float = 0.0  # AlexNet lighting: std of the weights on the training set's RGB principal axes


@dataclass
class ScenesConfig:
    """``data.name=mnist-scenes`` without ``data.root``: the scenes generated once into the cache."""

    size: int = 128  # side of each square scene, pixels
    digits: str = "1-6"  # digits per scene: "N" or "MIN-MAX"
    train: int = 6000  # training scenes (from MNIST training digits)
    test: int = 1000  # test scenes (from MNIST test digits only)
    seed: int = 0
    clutter: bool = False  # add unlabelled digit fragments as distractors
    format: Literal["voc", "coco"] = "voc"


@dataclass
class DataConfig:
    """Where the images come from and how they are split and prepared."""

    name: str = "mnist"  # mnist, fashion-mnist, cifar10, cifar10-jpeg, cifar100, imagenette-160, folder;
    # detection (task=detect): raccoon, mnist-scenes, voc, coco, yolo (the last three read data.root)
    root: Optional[str] = None  # an image folder (for name=folder): class per sub-folder
    data_dir: Optional[str] = None  # explicit directory holding the datasets
    download: bool = True  # fetch a missing MNIST/Fashion-MNIST/CIFAR (MD5-checked); never with CNNLAB_OFFLINE=1
    val: Literal["split", "test", "none"] = "split"  # a stratified split, the test set, or none
    val_fraction: float = 0.1
    final_fit: bool = False  # train on train+validation (no model selection on val)
    test_fraction: float = 0.2  # for a folder with no test/ sub-folder: held-out fraction
    image_size: Optional[int] = None  # folder images are resized to this (default: the first image's);
    # detection: every image is letterboxed to image_size x image_size (default: scenes.size, else 256)
    resize: Literal["resize", "center_crop", "pad"] = "resize"
    channels: Optional[int] = None  # 1 or 3; folder default: 3 unless every image is greyscale
    normalize: bool = True  # subtract the train split's per-channel mean, divide by std
    batch_size: int = 128
    eval_batch_size: int = 1000
    strict: bool = False  # an unreadable image (detection: a bad box or annotation) is fatal (else skipped and counted)
    cache_dir: Optional[str] = None  # decoded-folder cache (default ~/.cache/cnnlab)
    limit_train: Optional[int] = None  # exactly N training images drawn at random, each class keeping its share (seeded)
    classes: Optional[list[str]] = None  # detection: the class list (default: classes.txt, or the names found)
    scenes: ScenesConfig = field(default_factory=ScenesConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelConfig:
    """A registered model name plus its constructor options (checked by the registry)."""

    name: str = "mnist_classic"
    options: dict = field(default_factory=dict)


@dataclass
class OptimConfig:
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD and RMSprop
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    amsgrad: bool = False
    fused: bool = False  # torch's fused SGD/Adam/AdamW kernel: one call per step instead of a loop over tensors
    alpha: float = 0.99  # RMSprop smoothing constant
    weight_decay: float = 0.0  # decoupled for AdamW, coupled (L2 in the update) for the others
    decay_norm_and_bias: bool = False  # apply weight decay to norm weights and biases too
    l1: float = 0.0  # explicit penalty l1 * sum|w| added to the loss (conv and linear weights)
    l2: float = 0.0  # explicit penalty l2 * sum w^2 added to the loss
    layer_decay: Optional[float] = None  # per-stage lr: the head gets lr, each earlier stage this factor times the next
    bias_lr_scale: float = 1.0  # biases and norm parameters learn this many times faster (airbench: 64)
    per_1024: bool = False  # lr (and peak/min lr) given per 1024 examples: scaled by batch_size / 1024 (train/scaling.py)


@dataclass
class ScheduleConfig:
    name: Literal["constant", "onecycle", "plateau", "cosine", "step"] = "constant"
    peak_lr: Optional[float] = None  # one-cycle peak (default optim.lr)
    warmup_fraction: float = 0.25  # one-cycle: fraction of steps rising to the peak
    initial_div: float = 25.0  # one-cycle: start at peak / initial_div
    final_div: float = 1e4  # one-cycle: end at peak / final_div
    warmup_epochs: float = 0.0  # cosine: linear warm-up length
    min_lr: float = 0.0  # cosine floor and plateau floor
    factor: float = 0.5  # plateau and step: multiply the lr by this
    patience: int = 2  # plateau: epochs without improvement before cutting
    threshold: float = 1e-4  # plateau: improvement smaller than this does not count
    step_epochs: int = 10  # step: cut every this many epochs
    max_lr: Optional[Literal["find"]] = None  # find: run the lr range test first (cnnlab lr-find) and train at its
    # suggestion (one-cycle: as peak_lr; other schedules: as optim.lr); give a number through peak_lr / optim.lr


@dataclass
class EarlyStopConfig:
    patience: Optional[int] = None  # epochs without improvement; None disables
    min_delta: float = 0.0
    monitor: Literal["val_loss", "val_accuracy", "val_map50"] = "val_accuracy"  # val_map50: detection (mAP@0.5)
    restore_best: bool = True


@dataclass
class TrainConfig:
    epochs: int = 10
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    clip_value: Optional[float] = None
    clip_norm: Optional[float] = None
    label_smoothing: float = 0.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16 autocast; fp16: + a gradient scaler (train/precision.py)
    channels_last: bool = False
    log_every: int = 50  # steps between per-step metric lines (and host syncs on GPU)
    deterministic: bool = True  # deterministic algorithms where the device allows
    threads: Optional[int] = None  # CPU intra-op threads (default: torch's choice)
    checkpoint_every: int = 1  # epochs between last.pt saves
    plots: bool = True  # draw curves.png at the end
    unfreeze_every: Optional[int] = None  # gradual unfreezing: one more frozen stage trains every this many epochs
    loggers: list[str] = field(default_factory=list)  # experiment trackers: tensorboard, mlflow, wandb (optional extras)
    early_stopping: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    # Speed-run parts (cnnlab/train/whitening.py, ema.py, lookahead.py, tta.py, fastpath.py).
    whitening: Literal["none", "init", "frozen"] = "none"  # first conv from training-patch eigenvectors
    whitening_eps: float = 5e-4  # added to each patch-covariance eigenvalue before 1/sqrt
    ema: Optional[float] = None  # decay of an exponential moving average of the weights, tested with (e.g. 0.99)
    ema_every: int = 1  # steps between EMA updates
    lookahead: Optional[float] = None  # Lookahead: every lookahead_k steps, slow += alpha * (fast - slow)
    lookahead_k: int = 5
    tta: Literal["none", "flip", "translate", "flip-translate"] = "none"  # test-time augmentation of the final test
    compile: bool = False  # torch.compile the model (compile time reported apart from training time)
    gpu_fast: bool = False  # on CUDA: bf16 autocast, channels_last and compile; elsewhere one notice
    # Distributed data-parallel runs (under torchrun; see docs/distributed.md). Ignored in a plain run.
    dist_backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: NCCL on GPUs, gloo on CPUs
    dist_timeout: float = 600.0  # seconds any collective may wait for the other ranks (a dead rank ends the run)
    sync_bn: bool = False  # batch-norm statistics over the global batch (torch.nn.SyncBatchNorm, GPUs only)


@dataclass
class DetectConfig:
    """The detector over ``model.name``'s features (``task: detect``; see docs/detection.md)."""

    strides: list[int] = field(default_factory=lambda: [8, 16])  # feature maps used, by stride (pixels per cell)
    fpn: bool = True  # a small top-down feature pyramid over the chosen maps (else 1x1 projections only)
    channels: int = 64  # width of the FPN outputs and of the shared head
    head_convs: int = 2  # 3x3 conv-norm-act layers in the shared head before the three predictions
    decoupled_head: bool = False  # separate towers for box+objectness and for classes (YOLOX)
    center_radius: float = 2.5  # centre sampling: positive cells lie within this many strides of a box centre
    size_ranges: Optional[list[float]] = None  # level i takes boxes with max side in (r[i-1], r[i]]; default 8*stride
    box_loss: Literal["iou", "giou", "ciou"] = "giou"
    obj_loss: Literal["bce", "focal"] = "bce"
    box_weight: float = 5.0
    obj_weight: float = 1.0
    cls_weight: float = 1.0
    score_threshold: float = 0.05  # detections scoring below this are dropped before NMS
    iou_threshold: float = 0.5  # class-aware NMS: a box overlapping a better one of its class by more is dropped
    max_detections: int = 100  # per image, after NMS
    pre_nms_top_k: int = 1000  # best-scoring candidates per image that enter NMS


@dataclass
class Config:
    name: str = "run"
    description: str = ""
    task: Literal["classify", "detect"] = "classify"  # detect: boxes + classes per image (data.name raccoon, ...)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)


# Upper bounds are far above any sensible setting; they exist so that a typo (an extra digit, a
# negative sign, 1e300) is one clear line instead of a crash deep in torch or the OS.
MAX_BATCH = 2**20
MAX_IMAGE_SIZE = 4096
MAX_EPOCHS = 10**6
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_STEPS = 10**9
MAX_CROP_PADDING = 256  # pixels per side; a padded batch grows with (size + 2 * padding)**2
FLOAT32_MAX = 3.4e38  # a config float ends up in float32 tensors (learning rate, weight decay, ...)


def max_threads() -> int:
    """The most CPU threads a run may ask for: 4 x the CPU count (libgomp crashes on absurd counts)."""
    return 4 * (os.cpu_count() or 1)


def _int_in(low: int, high: int, optional: bool = False) -> tuple[typing.Callable[[Any], bool], str]:
    desc = f"an integer in [{low}, {high:,}]" + (" or null" if optional else "")
    return (lambda v: (optional and v is None) or (v is not None and low <= v <= high)), desc


# Range checks: key -> (predicate, description of the valid range). Every float is also finite
# (checked with the type, in _check_type).
_RANGES: dict[str, tuple[typing.Callable[[Any], bool], Union[str, typing.Callable[[], str]]]] = {
    "data.val_fraction": (lambda v: 0.0 < v < 1.0, "a fraction in (0, 1)"),
    "data.test_fraction": (lambda v: 0.0 < v < 1.0, "a fraction in (0, 1)"),
    "data.batch_size": _int_in(1, MAX_BATCH),
    "data.eval_batch_size": _int_in(1, MAX_BATCH),
    "data.image_size": _int_in(1, MAX_IMAGE_SIZE, optional=True),
    "data.channels": (lambda v: v in (None, 1, 3), "1 or 3"),
    "data.limit_train": _int_in(1, MAX_STEPS, optional=True),
    "data.augment.crop_padding": _int_in(0, MAX_CROP_PADDING),
    "data.augment.min_box": (lambda v: 0.0 <= v <= MAX_IMAGE_SIZE, f"pixels in [0, {MAX_IMAGE_SIZE}]"),
    "data.scenes.size": _int_in(16, MAX_IMAGE_SIZE),
    "data.scenes.train": _int_in(1, 10**7),
    "data.scenes.test": _int_in(1, 10**7),
    "data.scenes.seed": _int_in(0, MAX_SEED),
    "data.augment.hflip": (lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]"),
    "data.augment.erase_prob": (lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]"),
    "data.augment.erase_size": (lambda v: 0.0 < v <= 1.0, "a fraction in (0, 1]"),
    "data.augment.scale": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "data.augment.translate": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "data.augment.brightness": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "data.augment.contrast": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "data.augment.saturation": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "data.augment.noise_std": (lambda v: v >= 0.0, ">= 0"),
    "data.augment.rotate": (lambda v: 0.0 <= v <= 180.0, "degrees in [0, 180]"),
    "data.augment.shear": (lambda v: 0.0 <= v < 90.0, "degrees in [0, 90)"),
    "data.augment.random_resized_crop": (lambda v: v is None or 0.0 < v[0] <= v[1] <= 1.0,
                                         "null or [min, max] area fractions with 0 < min <= max <= 1"),
    "data.augment.resized_crop_ratio": (lambda v: 0.0 < v[0] <= v[1] <= 100.0,
                                        "[min, max] aspect ratios with 0 < min <= max <= 100"),
    "data.augment.hue": (lambda v: 0.0 <= v <= 0.5, "in [0, 0.5] (half the colour wheel)"),
    "data.augment.pca_lighting": (lambda v: 0.0 <= v <= 10.0, "in [0, 10]"),
    "optim.lr": (lambda v: v > 0, "> 0"),
    "optim.momentum": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "optim.betas": (lambda v: all(0.0 <= b < 1.0 for b in v), "two values in [0, 1)"),
    "optim.alpha": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "optim.weight_decay": (lambda v: v >= 0, ">= 0"),
    "optim.l1": (lambda v: v >= 0, ">= 0"),
    "optim.l2": (lambda v: v >= 0, ">= 0"),
    "optim.eps": (lambda v: v > 0, "> 0"),
    "schedule.peak_lr": (lambda v: v is None or v > 0, "> 0"),
    "schedule.warmup_fraction": (lambda v: 0.0 <= v < 1.0, "a fraction in [0, 1)"),
    "schedule.factor": (lambda v: 0.0 < v < 1.0, "in (0, 1)"),
    "schedule.initial_div": (lambda v: v >= 1.0, ">= 1"),
    "schedule.final_div": (lambda v: v >= 1.0, ">= 1"),
    "schedule.warmup_epochs": (lambda v: 0.0 <= v <= MAX_EPOCHS, f"in [0, {MAX_EPOCHS:,}]"),
    "schedule.min_lr": (lambda v: v >= 0, ">= 0"),
    "schedule.threshold": (lambda v: v >= 0, ">= 0"),
    "schedule.patience": _int_in(0, MAX_EPOCHS),
    "schedule.step_epochs": _int_in(1, MAX_EPOCHS),
    "train.epochs": _int_in(1, MAX_EPOCHS),
    "train.seed": _int_in(0, MAX_SEED),
    "train.clip_value": (lambda v: v is None or v > 0, "> 0"),
    "train.clip_norm": (lambda v: v is None or v > 0, "> 0"),
    "train.label_smoothing": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "train.log_every": _int_in(1, MAX_STEPS),
    "train.threads": (lambda v: v is None or 1 <= v <= max_threads(),
                      lambda: f"null or an integer in [1, {max_threads()}] (4 x this machine's "
                              f"{os.cpu_count() or 1} CPUs)"),
    "train.checkpoint_every": _int_in(1, MAX_EPOCHS),
    "train.dist_timeout": (lambda v: 1.0 <= v <= 86400.0, "seconds in [1, 86400]"),
    "train.early_stopping.patience": _int_in(1, MAX_EPOCHS, optional=True),
    "train.early_stopping.min_delta": (lambda v: v >= 0, ">= 0"),
    "optim.layer_decay": (lambda v: v is None or 0.0 < v <= 1.0, "a factor in (0, 1]"),
    "detect.strides": (lambda v: 1 <= len(v) <= 5 and all(s in (2, 4, 8, 16, 32, 64, 128) for s in v)
                       and list(v) == sorted(set(v)), "1 to 5 increasing powers of two among 2..128"),
    "detect.channels": _int_in(1, 4096),
    "detect.head_convs": _int_in(0, 8),
    "detect.center_radius": (lambda v: 0.0 < v <= 100.0, "strides in (0, 100]"),
    "detect.size_ranges": (lambda v: v is None or (all(x > 0 for x in v) and list(v) == sorted(set(v))),
                           "null or increasing positive pixel sizes, one per stride but the last"),
    "detect.box_weight": (lambda v: v >= 0, ">= 0"),
    "detect.obj_weight": (lambda v: v >= 0, ">= 0"),
    "detect.cls_weight": (lambda v: v >= 0, ">= 0"),
    "detect.score_threshold": (lambda v: 0.0 <= v <= 1.0, "a score in [0, 1]"),
    "detect.iou_threshold": (lambda v: 0.0 <= v <= 1.0, "an IoU in [0, 1]"),
    "detect.max_detections": _int_in(1, 100_000),
    "detect.pre_nms_top_k": _int_in(1, 10**6),
    "train.unfreeze_every": _int_in(1, MAX_EPOCHS, optional=True),
    "train.whitening_eps": (lambda v: v > 0, "> 0"),
    "optim.bias_lr_scale": (lambda v: v > 0, "> 0"),
    "train.ema": (lambda v: v is None or 0.0 < v < 1.0, "a decay in (0, 1) or null"),
    "train.ema_every": _int_in(1, MAX_STEPS),
    "train.lookahead": (lambda v: v is None or 0.0 < v <= 1.0, "a step fraction in (0, 1] or null"),
    "train.lookahead_k": _int_in(1, MAX_STEPS),
    "train.loggers": (lambda v: set(v) <= {"tensorboard", "mlflow", "wandb"} and len(set(v)) == len(v),
                      "a list of distinct trackers among tensorboard, mlflow, wandb"),
}

# A parsed YAML document larger than this (counting every node an alias repeats) or nested deeper
# is refused: a config is a few hundred nodes, while 9 aliases per level for 9 levels ("billion
# laughs") expand to 387 million.
MAX_YAML_NODES = 10_000
MAX_YAML_DEPTH = 32


# ----------------------------------------------------------------------------- presets


def preset_names() -> list[str]:
    """Names of the presets shipped with cnnlab."""
    folder = resources.files("cnnlab") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    """The YAML text of a shipped preset."""
    if name not in preset_names():
        raise CnnlabError(
            f"no preset or YAML file named '{_cut(name, 100)}'; {did_you_mean(name, preset_names())} "
            "(run `cnnlab presets` to list them)"
        )
    data = (resources.files("cnnlab") / "presets" / f"{name}.yaml").read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CnnlabError(f"preset {name} is not UTF-8 text; reinstall cnnlab or fix the file") from None


def _read_source(source: str) -> dict:
    """A preset name or a YAML file path -> a plain dict."""
    path = Path(source)
    if path.is_dir():
        raise CnnlabError(f"config '{source}' is a folder; give a YAML file or a preset name "
                          "(run `cnnlab presets` to list them)")
    if source.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise CnnlabError(f"config file '{source}' does not exist")
        text = read_text_file(path, "config file")
    else:
        text = preset_text(source)
    raw = load_yaml(text, f"'{source}'")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise CnnlabError(f"'{source}' must hold a YAML mapping at the top level")
    return raw


def read_text_file(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of a small file; a folder, an unreadable or a non-UTF-8 file is one line."""
    path = Path(path)
    if path.is_dir():
        raise CnnlabError(f"{what} {path} is a folder, not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CnnlabError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CnnlabError(f"{what} {path} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                          "save it as UTF-8") from None


def load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load`` whose every failure is one line, refusing documents that expand absurdly.

    ``source`` names the text in messages (a quoted file or preset name, or ``override 'k=v'``).
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CnnlabError(f"{source} is not valid YAML: {_cut(' '.join(str(exc).split()))}") from None
    except RecursionError:
        raise CnnlabError(f"{source} nests too deeply to be a config") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise CnnlabError(f"{source} holds an unusable value: {_cut(str(exc))}") from None
    check_yaml_size(value, source)
    return value


def check_yaml_size(value: Any, source: str) -> None:
    """Refuse a parsed document of more than MAX_YAML_NODES nodes (aliases counted as expanded)
    or nested deeper than MAX_YAML_DEPTH; stops counting at the cap, so a bomb costs nothing."""
    stack, nodes = [(value, 1)], 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_YAML_NODES:
            raise CnnlabError(f"{source} expands to more than {MAX_YAML_NODES:,} values (YAML aliases "
                              "repeating aliases?); a config is far smaller")
        if depth > MAX_YAML_DEPTH:
            raise CnnlabError(f"{source} nests deeper than {MAX_YAML_DEPTH} levels; a config is far shallower")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------- overrides


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["train.epochs=3", "model.filters=[16,32]"]`` -> ``{"train.epochs": 3, ...}``.

    Values are parsed as YAML, so ``3`` is an int, ``1e-3`` a float,
    ``[16,32]`` a list and ``null`` is None.
    """
    parsed: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise CnnlabError(f"override '{item}' must look like key=value, e.g. train.epochs=3")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise CnnlabError(f"override '{item}' has no key before '='")
        parsed[key] = _parse_value(text, key)
    return parsed


def _parse_value(text: str, key: str = "value") -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # not YAML: the type check says what was expected
    except (RecursionError, ValueError):
        raise CnnlabError(f"override {key}={_cut(text, 60)!r} is not a usable value (too deeply nested, "
                          "or an integer of more than 4300 digits)") from None
    check_yaml_size(value, f"override {key}=...")
    # YAML 1.1 reads "1e-3" as a string; accept it as the float a user meant.
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in "eE.") else value
        except ValueError:
            return value
    return value


def _set_dotted(raw: dict, key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise CnnlabError(f"cannot set '{key}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


# ----------------------------------------------------------------------------- building


def load_config(source: str | None = None, overrides: list[str] | dict | None = None) -> Config:
    """Build a validated :class:`Config` from a preset name or YAML path plus overrides."""
    return config_with_overrides(_read_source(source) if source else {}, overrides)


def config_with_overrides(raw: dict, overrides: list[str] | dict | None = None) -> Config:
    """A nested config dict (a preset, or a run's ``config.yaml``) with overrides applied, validated."""
    raw = copy.deepcopy(raw)
    items = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
    for key, value in items.items():
        _set_dotted(raw, key, value)
    return config_from_dict(raw)


def config_from_dict(raw: dict) -> Config:
    """Strictly convert a nested dict (as in ``config.yaml``) into a :class:`Config`."""
    if not isinstance(raw, dict):
        raise CnnlabError(f"a config must be a mapping, got {short_repr(raw)}")
    check_yaml_size(raw, "the config")  # e.g. a run's config.yaml edited by hand
    raw = dict(raw)
    model_raw = raw.pop("model", {}) or {}
    if not isinstance(model_raw, dict):
        raise CnnlabError("'model' must be a mapping with at least a 'name'")
    model_raw = dict(model_raw)
    options = model_raw.pop("options", {}) or {}
    if not isinstance(options, dict):
        raise CnnlabError(f"model.options must be a mapping, got {short_repr(options)}")
    options = dict(options)
    name = model_raw.pop("name", ModelConfig.name)
    options.update(model_raw)  # model.<option> may be written flat, next to the name
    cfg = _build(Config, raw, "")
    check_name(cfg.name)  # runs/<name>-<time>: never a path out of runs/
    cfg.model = ModelConfig(name=_check_type(name, str, "model.name"), options=options)
    for key, (ok, desc) in _RANGES.items():
        value = get_dotted(cfg, key)
        if not ok(value):
            raise CnnlabError(f"{key}={short_repr(value)} is out of range; expected {desc() if callable(desc) else desc}")
    check_fused_optimizer(cfg.optim)
    return cfg


def check_fused_optimizer(optim: OptimConfig) -> None:
    """Refuse ``optim.fused=true`` for an optimizer torch has no fused kernel for (RMSprop)."""
    if optim.fused and optim.name not in ("sgd", "adam", "adamw"):
        raise CnnlabError(f"optim.fused=true works with sgd, adam and adamw; torch has no fused {optim.name} "
                          "(set optim.fused=false)")


def _build(cls, raw: dict, prefix: str):
    if not isinstance(raw, dict):
        raise CnnlabError(f"'{prefix.rstrip('.')}' must be a mapping, got {short_repr(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            valid = [f"{prefix}{k}" for k in fields] + ([] if prefix else ["model"])
            raise CnnlabError(f"unknown config key '{_cut(dotted, 100)}'; {did_you_mean(dotted, valid)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, dotted + ".")
        else:
            kwargs[key] = _check_type(value, hint, dotted)
    return cls(**kwargs)


def _check_type(value: Any, hint: Any, key: str) -> Any:
    """Return ``value`` converted to ``hint`` where lossless, else raise naming the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for option in [a for a in args if a is not type(None)]:
            try:
                return _check_type(value, option, key)
            except CnnlabError as exc:
                errors.append(str(exc))
        raise CnnlabError(errors[0] if errors else f"{key} must not be null")
    if origin is Literal:
        if value not in args:
            raise CnnlabError(f"{key}={short_repr(value)} is not valid; expected one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise CnnlabError(f"{key} must be a list, got {short_repr(value)}")
        if origin is tuple and args and len(args) != len(value):
            raise CnnlabError(f"{key} must have {len(args)} values, got {len(value)}")
        items = [_check_type(v, args[i] if origin is tuple else (args[0] if args else Any), key)
                 for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise CnnlabError(f"{key} must be true or false, got {short_repr(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            # 3.0 is the integer 3; 1e300 is not an integer anyone meant (nor exactly representable).
            if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
                return int(value)
            raise CnnlabError(f"{key} must be an integer, got {short_repr(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CnnlabError(f"{key} must be a number, got {short_repr(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            raise CnnlabError(f"{key}={short_repr(value)} is too large; expected a finite number") from None
        if not math.isfinite(number):
            raise CnnlabError(f"{key}={number} is not a finite number; give a finite value")
        if abs(number) > FLOAT32_MAX:  # torch keeps these in float32 tensors: 1e300 would overflow there
            raise CnnlabError(f"{key}={number:g} is too large; expected a magnitude below {FLOAT32_MAX:.1e}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise CnnlabError(f"{key} must be a string, got {short_repr(value)}")
        return value
    if hint is dict:
        if not isinstance(value, dict):
            raise CnnlabError(f"{key} must be a mapping, got {short_repr(value)}")
        return value
    return value


def get_dotted(cfg: Any, key: str) -> Any:
    """``get_dotted(cfg, "train.epochs")`` -> ``cfg.train.epochs``."""
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def config_to_dict(cfg: Config) -> dict:
    """A plain nested dict (model options flattened next to the name), YAML-ready."""
    out = dataclasses.asdict(cfg)
    model = {"name": cfg.model.name, **cfg.model.options}
    out["model"] = model
    return _plain(out)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump_config(cfg: Config) -> str:
    """YAML text of a fully resolved config (what ``config.yaml`` in a run holds)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)

