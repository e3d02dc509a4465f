"""The configuration schema: one dataclass per section, each field with its range and the tasks it serves.

Every field is declared with :func:`setting` where it has more to say than a type and a
default: ``valid=(predicate, description)`` is its range (checked by
:mod:`cnnlab.config.validate`), ``tasks=`` the tasks it applies to and ``why`` the reason it
does not apply to the others (checked by :mod:`cnnlab.config.scope` before a run starts). A
field without ``tasks`` applies to every task.

>>> from dataclasses import fields
>>> f = {x.name: x for x in fields(AugmentConfig)}["rotate"]
>>> f.metadata["tasks"], f.metadata["valid"][1]
(('classify',), 'degrees in [0, 180]')
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

ALL = None  # a setting every task uses
CLASSIFY = ("classify",)
DETECT = ("detect",)

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


def int_in(low: int, high: int, optional: bool = False) -> tuple[typing.Callable[[Any], bool], str]:
    """A ``valid=`` range: an integer in ``[low, high]`` (or null when ``optional``).

    >>> ok, desc = int_in(1, 100_000)
    >>> ok(1), ok(100_000), ok(0), desc
    (True, True, False, 'an integer in [1, 100,000]')
    """
    desc = f"an integer in [{low}, {high:,}]" + (" or null" if optional else "")
    return (lambda v: (optional and v is None) or (v is not None and low <= v <= high)), desc


# The ranges many fields share (a ``valid=`` pair: predicate, description).
NON_NEGATIVE = (lambda v: v >= 0, ">= 0")
POSITIVE = (lambda v: v > 0, "> 0")
POSITIVE_OR_NULL = (lambda v: v is None or v > 0, "> 0")
IN_0_1 = (lambda v: 0.0 <= v < 1.0, "in [0, 1)")


def setting(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING,
            valid: tuple[typing.Callable[[Any], bool], Any] | None = None,
            tasks: tuple[str, ...] | None = ALL, why: str | None = None, doc: str | None = None):
    """A dataclass field with its valid range and the tasks it applies to (see the module docstring).

    ``valid`` is ``(predicate, description)``; the description may be a callable (computed when
    shown). ``tasks`` other than ALL need ``why``: the one-line reason the other tasks refuse it.
    ``doc`` is a one-line meaning, for schemas whose reference is generated (the sweep spec's).
    """
    if tasks is not ALL and not why:
        raise ValueError("a setting restricted to some tasks says why the others refuse it")
    metadata = {"valid": valid, "tasks": tasks, "why": why, "doc": doc}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class AugmentConfig:
    """Batched on-device augmentation; every op is off (0) by default."""

    # pad then random-crop back to size, pixels per side
    crop_padding: int = setting(0, valid=int_in(0, MAX_CROP_PADDING),
                                tasks=CLASSIFY,
                                why='a padded random crop is not box-aware yet (every box would have to move and be cut)')
    crop_mode: Literal["zero", "reflect"] = setting("zero",
                                                    tasks=CLASSIFY,
                                                    why='it sets the padded random crop, which detection does not apply')
    # probability of a horizontal flip
    hflip: float = setting(0.0, valid=(lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]"))
    # alternate: each image flips every other epoch (airbench)
    flip_mode: Literal["random", "alternate"] = setting("random",
                                                        tasks=CLASSIFY,
                                                        why="alternating flips are the classification speed run's; detection flips at random (data.augment.hflip)")
    # max rotation, degrees (uniform in [-rotate, rotate])
    rotate: float = setting(0.0, valid=(lambda v: 0.0 <= v <= 180.0, "degrees in [0, 180]"),
                            tasks=CLASSIFY,
                            why='rotated boxes are no longer axis-aligned (box-aware: hflip, scale, translate, brightness, contrast, saturation, hue)')
    scale: float = setting(0.0, valid=IN_0_1)  # max relative zoom (uniform in [1-scale, 1+scale])
    shear: float = setting(0.0, valid=(lambda v: 0.0 <= v < 90.0, "degrees in [0, 90)"),
                           tasks=CLASSIFY,
                           why='sheared boxes are no longer axis-aligned (box-aware: hflip, scale, translate, brightness, contrast, saturation, hue)')  # max shear, degrees
    translate: float = setting(0.0, valid=IN_0_1)  # max shift, fraction of the image size
    brightness: float = setting(0.0, valid=IN_0_1)  # factor uniform in [1-b, 1+b]
    contrast: float = setting(0.0, valid=IN_0_1)
    saturation: float = setting(0.0, valid=IN_0_1)
    # Gaussian noise std on the [0, 1] pixel scale
    noise_std: float = setting(0.0, valid=(lambda v: v >= 0.0, ">= 0"),
                               tasks=CLASSIFY, why='detection batches do not add noise yet')
    # probability of random erasing (cutout)
    erase_prob: float = setting(0.0, valid=(lambda v: 0.0 <= v <= 1.0, "a probability in [0, 1]"),
                                tasks=CLASSIFY, why='erasing could hide a labelled object while its box stays')
    erase_size: float = setting(0.25, valid=(lambda v: 0.0 < v <= 1.0, "a fraction in (0, 1]"),
                                tasks=CLASSIFY,
                                why='it sets random erasing, which detection does not apply')  # side of the erased square, fraction of the image side
    # detection: a box narrower or shorter than this (pixels) after augmenting is dropped
    min_box: float = setting(2.0, valid=(lambda v: 0.0 <= v <= MAX_IMAGE_SIZE, f"pixels in [0, {MAX_IMAGE_SIZE}]"),
                             tasks=DETECT, why='it is the smallest box kept after augmenting boxes')
    # The source texts' others (cnnlab/data/augment_more.py); classification only, except hue.
    random_resized_crop: Optional[tuple[float, float]] = setting(None, valid=(lambda v: v is None or 0.0 < v[0] <= v[1] <= 1.0,
                                         "null or [min, max] area fractions with 0 < min <= max <= 1"), tasks=CLASSIFY, why='not box-aware yet: a crop would have to move and cut every box')  # crop area fraction range, e.g. [0.35, 1]; resized back
    resized_crop_ratio: tuple[float, float] = setting((0.75, 4 / 3), valid=(lambda v: 0.0 < v[0] <= v[1] <= 100.0,
                                        "[min, max] aspect ratios with 0 < min <= max <= 100"), tasks=CLASSIFY, why='it sets the random-resized crop, which is not box-aware yet')  # the crop's aspect-ratio range (width/height), log-uniform
    # hue turned uniformly in [-hue, hue] fractions of the colour wheel (RGB images)
    hue: float = setting(0.0, valid=(lambda v: 0.0 <= v <= 0.5, "in [0, 0.5] (half the colour wheel)"))
    # AlexNet lighting: std of the weights on the training set's RGB principal axes
    pca_lighting: float = setting(0.0, valid=(lambda v: 0.0 <= v <= 10.0, "in [0, 10]"),
                                  tasks=CLASSIFY,
                                  why='not box-aware yet: detection batches do not apply AlexNet lighting')


@dataclass
class ScenesConfig:
    """``data.name=mnist-scenes`` without ``data.root``: the scenes generated once into the cache."""

    # side of each square scene, pixels
    size: int = setting(128, valid=int_in(16, MAX_IMAGE_SIZE), tasks=DETECT, why='mnist-scenes are detection data')
    # digits per scene: "N" or "MIN-MAX"
    digits: str = setting("1-6", tasks=DETECT, why='mnist-scenes are detection data')
    # training scenes (from MNIST training digits)
    train: int = setting(6000, valid=int_in(1, 10**7), tasks=DETECT, why='mnist-scenes are detection data')
    # test scenes (from MNIST test digits only)
    test: int = setting(1000, valid=int_in(1, 10**7), tasks=DETECT, why='mnist-scenes are detection data')
    seed: int = setting(0, valid=int_in(0, MAX_SEED), tasks=DETECT, why='mnist-scenes are detection data')
    # add unlabelled digit fragments as distractors
    clutter: bool = setting(False, tasks=DETECT, why='mnist-scenes are detection data')
    format: Literal["voc", "coco"] = setting("voc", tasks=DETECT, why='mnist-scenes are detection data')


@dataclass
class DataConfig:
    """Where the images come from and how they are split and prepared."""

    name: str = "mnist"  # mnist, fashion-mnist, cifar10, cifar10-jpeg, cifar100, imagenette-160, folder;
    # detection (task=detect): raccoon, mnist-scenes, voc, coco, yolo (the last three read data.root)
    root: Optional[str] = None  # an image folder (for name=folder): class per sub-folder
    data_dir: Optional[str] = None  # explicit directory holding the datasets
    download: bool = True  # fetch a missing MNIST/Fashion-MNIST/CIFAR (MD5-checked); never with CNNLAB_OFFLINE=1
    val: Literal["split", "test", "none"] = "split"  # a stratified split, the test set, or none
    val_fraction: float = setting(0.1, valid=(lambda v: 0.0 < v < 1.0, "a fraction in (0, 1)"))
    final_fit: bool = False  # train on train+validation (no model selection on val)
    # for a folder with no test/ sub-folder: held-out fraction
    test_fraction: float = setting(0.2, valid=(lambda v: 0.0 < v < 1.0, "a fraction in (0, 1)"),
                                   tasks=CLASSIFY, why="a detection dataset's test split comes from its own files")
    # folder images are resized to this (default: the first image's);
    image_size: Optional[int] = setting(None, valid=int_in(1, MAX_IMAGE_SIZE, optional=True))
    # detection: every image is letterboxed to image_size x image_size (default: scenes.size, else 256)
    resize: Literal["resize", "center_crop", "pad"] = setting("resize",
                                                              tasks=CLASSIFY,
                                                              why='detection letterboxes every image to data.image_size (aspect kept)')
    # 1 or 3; folder default: 3 unless every image is greyscale
    channels: Optional[int] = setting(None, valid=(lambda v: v in (None, 1, 3), "1 or 3"))
    normalize: bool = True  # subtract the train split's per-channel mean, divide by std
    batch_size: int = setting(128, valid=int_in(1, MAX_BATCH))
    eval_batch_size: int = setting(1000, valid=int_in(1, MAX_BATCH))
    strict: bool = False  # an unreadable image (detection: a bad box or annotation) is fatal (else skipped and counted)
    cache_dir: Optional[str] = None  # decoded-folder cache (default ~/.cache/cnnlab)
    # exactly N training images drawn at random, each class keeping its share (seeded)
    limit_train: Optional[int] = setting(None, valid=int_in(1, MAX_STEPS, optional=True))
    # detection: the class list (default: classes.txt, or the names found)
    classes: Optional[list[str]] = setting(None,
                                           tasks=DETECT,
                                           why="a classification dataset's classes come from its folders or label files")
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
    lr: float = setting(1e-3, valid=POSITIVE)
    momentum: float = setting(0.9, valid=IN_0_1)  # SGD and RMSprop
    nesterov: bool = False
    betas: tuple[float, float] = setting((0.9, 0.999), valid=(lambda v: all(0.0 <= b < 1.0 for b in v), "two values in [0, 1)"))
    eps: float = setting(1e-8, valid=POSITIVE)
    amsgrad: bool = False
    fused: bool = False  # torch's fused SGD/Adam/AdamW kernel: one call per step instead of a loop over tensors
    alpha: float = setting(0.99, valid=IN_0_1)  # RMSprop smoothing constant
    # decoupled for AdamW, coupled (L2 in the update) for the others
    weight_decay: float = setting(0.0, valid=NON_NEGATIVE)
    decay_norm_and_bias: bool = False  # apply weight decay to norm weights and biases too
    # explicit penalty l1 * sum|w| added to the loss (conv and linear weights)
    l1: float = setting(0.0, valid=NON_NEGATIVE)
    l2: float = setting(0.0, valid=NON_NEGATIVE)  # explicit penalty l2 * sum w^2 added to the loss
    layer_decay: Optional[float] = setting(None, valid=(lambda v: v is None or 0.0 < v <= 1.0, "a factor in (0, 1]"))  # per-stage lr: the head gets lr, each earlier stage this factor times the next
    # biases and norm parameters learn this many times faster (airbench: 64)
    bias_lr_scale: float = setting(1.0, valid=POSITIVE)
    per_1024: bool = False  # lr (and peak/min lr) given per 1024 examples: scaled by batch_size / 1024 (train/scaling.py)


@dataclass
class ScheduleConfig:
    name: Literal["constant", "onecycle", "plateau", "cosine", "step"] = "constant"
    # one-cycle peak (default optim.lr)
    peak_lr: Optional[float] = setting(None, valid=POSITIVE_OR_NULL)
    warmup_fraction: float = setting(0.25, valid=(lambda v: 0.0 <= v < 1.0, "a fraction in [0, 1)"))  # one-cycle: fraction of steps rising to the peak
    initial_div: float = setting(25.0, valid=(lambda v: v >= 1.0, ">= 1"))  # one-cycle: start at peak / initial_div
    final_div: float = setting(1e4, valid=(lambda v: v >= 1.0, ">= 1"))  # one-cycle: end at peak / final_div
    # cosine: linear warm-up length
    warmup_epochs: float = setting(0.0, valid=(lambda v: 0.0 <= v <= MAX_EPOCHS, f"in [0, {MAX_EPOCHS:,}]"))
    min_lr: float = setting(0.0, valid=NON_NEGATIVE)  # cosine floor and plateau floor
    # plateau and step: multiply the lr by this
    factor: float = setting(0.5, valid=(lambda v: 0.0 < v < 1.0, "in (0, 1)"))
    patience: int = setting(2, valid=int_in(0, MAX_EPOCHS))  # plateau: epochs without improvement before cutting
    # plateau: improvement smaller than this does not count
    threshold: float = setting(1e-4, valid=NON_NEGATIVE)
    step_epochs: int = setting(10, valid=int_in(1, MAX_EPOCHS))  # step: cut every this many epochs
    # find: run the lr range test first (cnnlab lr-find) and train at its
    max_lr: Optional[Literal["find"]] = setting(None)
    # suggestion (one-cycle: as peak_lr; other schedules: as optim.lr); give a number through peak_lr / optim.lr


@dataclass
class EarlyStopConfig:
    # epochs without improvement; None disables
    patience: Optional[int] = setting(None, valid=int_in(1, MAX_EPOCHS, optional=True))
    min_delta: float = setting(0.0, valid=NON_NEGATIVE)
    monitor: Literal["val_loss", "val_accuracy", "val_map50"] = "val_accuracy"  # val_map50: detection (mAP@0.5)
    restore_best: bool = True


@dataclass
class TrainConfig:
    epochs: int = setting(10, valid=int_in(1, MAX_EPOCHS))
    seed: int = setting(0, valid=int_in(0, MAX_SEED))
    device: str = "auto"  # auto, cpu, cuda, cuda:1, mps
    clip_value: Optional[float] = setting(None, valid=POSITIVE_OR_NULL)
    clip_norm: Optional[float] = setting(None, valid=POSITIVE_OR_NULL)
    label_smoothing: float = setting(0.0, valid=IN_0_1,
                                     tasks=CLASSIFY,
                                     why='the detection loss (box, objectness, class BCE) has no label smoothing')
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # bf16 autocast; fp16: + a gradient scaler (train/precision.py)
    channels_last: bool = False
    # steps between per-step metric lines (and host syncs on GPU)
    log_every: int = setting(50, valid=int_in(1, MAX_STEPS))
    deterministic: bool = True  # deterministic algorithms where the device allows
    threads: Optional[int] = setting(None, valid=(lambda v: v is None or 1 <= v <= max_threads(),
                      lambda: f"null or an integer in [1, {max_threads()}] (4 x this machine's "
                              f"{os.cpu_count() or 1} CPUs)"))  # CPU intra-op threads (default: torch's choice)
    checkpoint_every: int = setting(1, valid=int_in(1, MAX_EPOCHS))  # epochs between last.pt saves
    plots: bool = True  # draw curves.png at the end
    # gradual unfreezing: one more frozen stage trains every this many epochs
    unfreeze_every: Optional[int] = setting(None, valid=int_in(1, MAX_EPOCHS, optional=True))
    loggers: list[str] = setting(factory=list, valid=(lambda v: set(v) <= {"tensorboard", "mlflow", "wandb"} and len(set(v)) == len(v),
                      "a list of distinct trackers among tensorboard, mlflow, wandb"))  # experiment trackers: tensorboard, mlflow, wandb (optional extras)
    early_stopping: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    # Speed-run parts (cnnlab/train/whitening.py, ema.py, lookahead.py, tta.py, fastpath.py).
    # first conv from training-patch eigenvectors
    whitening: Literal["none", "init", "frozen"] = setting("none",
                                                           tasks=CLASSIFY, why='detection training would ignore it')
    # added to each patch-covariance eigenvalue before 1/sqrt
    whitening_eps: float = setting(5e-4, valid=POSITIVE,
                                   tasks=CLASSIFY,
                                   why='it sets train.whitening, which detection training would ignore')
    # decay of an exponential moving average of the weights, tested with (e.g. 0.99)
    ema: Optional[float] = setting(None, valid=(lambda v: v is None or 0.0 < v < 1.0, "a decay in (0, 1) or null"),
                                   tasks=CLASSIFY, why='not validated on detectors yet')
    # steps between EMA updates
    ema_every: int = setting(1, valid=int_in(1, MAX_STEPS),
                             tasks=CLASSIFY, why='it sets train.ema, which is not validated on detectors yet')
    lookahead: Optional[float] = setting(None, valid=(lambda v: v is None or 0.0 < v <= 1.0, "a step fraction in (0, 1] or null"),
                                         tasks=CLASSIFY,
                                         why='not validated on detectors yet')  # Lookahead: every lookahead_k steps, slow += alpha * (fast - slow)
    lookahead_k: int = setting(5, valid=int_in(1, MAX_STEPS),
                               tasks=CLASSIFY, why='it sets train.lookahead, which is not validated on detectors yet')
    # test-time augmentation of the final test
    tta: Literal["none", "flip", "translate", "flip-translate"] = setting("none",
                                                                          tasks=CLASSIFY,
                                                                          why='test-time augmentation averages class logits, not boxes')
    # torch.compile the model (compile time reported apart from training time)
    compile: bool = setting(False, tasks=CLASSIFY, why='detection training would ignore it')
    # on CUDA: bf16 autocast, channels_last and compile; elsewhere one notice
    gpu_fast: bool = setting(False,
                             tasks=CLASSIFY, why='it turns on train.compile, which detection training would ignore')
    # Batch mixing (cnnlab/train/mixup.py, cutmix.py): lam ~ Beta(alpha, alpha) per batch; one of the two at a time.
    mixup: Optional[float] = setting(None, valid=(lambda v: v is None or 0.0 < v <= 100.0, "an alpha in (0, 100] or null"),
                                     tasks=CLASSIFY, why="blending two images would blend their boxes")
    cutmix: Optional[float] = setting(None, valid=(lambda v: v is None or 0.0 < v <= 100.0, "an alpha in (0, 100] or null"),
                                      tasks=CLASSIFY, why="a pasted patch would cut boxes of both images")
    # Distributed data-parallel runs (under torchrun; see docs/distributed.md). Ignored in a plain run.
    dist_backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: NCCL on GPUs, gloo on CPUs
    # seconds any collective may wait for the other ranks (a dead rank ends the run)
    dist_timeout: float = setting(600.0, valid=(lambda v: 1.0 <= v <= 86400.0, "seconds in [1, 86400]"))
    sync_bn: bool = False  # batch-norm statistics over the global batch (torch.nn.SyncBatchNorm, GPUs only)


@dataclass
class DetectConfig:
    """The detector over ``model.name``'s features (``task: detect``; see docs/detection.md)."""

    strides: list[int] = setting(factory=lambda: [8, 16], valid=(lambda v: 1 <= len(v) <= 5 and all(s in (2, 4, 8, 16, 32, 64, 128) for s in v)
                       and list(v) == sorted(set(v)), "1 to 5 increasing powers of two among 2..128"), tasks=DETECT, why='it configures the detector (task=detect)')  # feature maps used, by stride (pixels per cell)
    # a small top-down feature pyramid over the chosen maps (else 1x1 projections only)
    fpn: bool = setting(True, tasks=DETECT, why='it configures the detector (task=detect)')
    # width of the FPN outputs and of the shared head
    channels: int = setting(64, valid=int_in(1, 4096), tasks=DETECT, why='it configures the detector (task=detect)')
    # 3x3 conv-norm-act layers in the shared head before the three predictions
    head_convs: int = setting(2, valid=int_in(0, 8), tasks=DETECT, why='it configures the detector (task=detect)')
    # separate towers for box+objectness and for classes (YOLOX)
    decoupled_head: bool = setting(False, tasks=DETECT, why='it configures the detector (task=detect)')
    center_radius: float = setting(2.5, valid=(lambda v: 0.0 < v <= 100.0, "strides in (0, 100]"),
                                   tasks=DETECT,
                                   why='it configures the detector (task=detect)')  # centre sampling: positive cells lie within this many strides of a box centre
    size_ranges: Optional[list[float]] = setting(None, valid=(lambda v: v is None or (all(x > 0 for x in v) and list(v) == sorted(set(v))),
                           "null or increasing positive pixel sizes, one per stride but the last"), tasks=DETECT, why='it configures the detector (task=detect)')  # level i takes boxes with max side in (r[i-1], r[i]]; default 8*stride
    box_loss: Literal["iou", "giou", "ciou"] = setting("giou",
                                                       tasks=DETECT, why='it configures the detector (task=detect)')
    obj_loss: Literal["bce", "focal"] = setting("bce", tasks=DETECT, why='it configures the detector (task=detect)')
    box_weight: float = setting(5.0, valid=NON_NEGATIVE,
                                tasks=DETECT, why='it configures the detector (task=detect)')
    obj_weight: float = setting(1.0, valid=NON_NEGATIVE,
                                tasks=DETECT, why='it configures the detector (task=detect)')
    cls_weight: float = setting(1.0, valid=NON_NEGATIVE,
                                tasks=DETECT, why='it configures the detector (task=detect)')
    # detections scoring below this are dropped before NMS
    score_threshold: float = setting(0.05, valid=(lambda v: 0.0 <= v <= 1.0, "a score in [0, 1]"),
                                     tasks=DETECT, why='it configures the detector (task=detect)')
    # class-aware NMS: a box overlapping a better one of its class by more is dropped
    iou_threshold: float = setting(0.5, valid=(lambda v: 0.0 <= v <= 1.0, "an IoU in [0, 1]"),
                                   tasks=DETECT, why='it configures the detector (task=detect)')
    # per image, after NMS
    max_detections: int = setting(100, valid=int_in(1, 100_000),
                                  tasks=DETECT, why='it configures the detector (task=detect)')
    # best-scoring candidates per image that enter NMS
    pre_nms_top_k: int = setting(1000, valid=int_in(1, 10**6),
                                 tasks=DETECT, why='it configures the detector (task=detect)')


@dataclass
class Config:
    name: str = "run"
    description: str = ""
    # classify (a label per image) or detect (boxes + classes per image: data.name raccoon, ...); any registered task
    task: str = setting("classify", valid=(lambda v: _is_task(v), lambda: "one of " + ", ".join(_task_names())))
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)


def _task_names() -> list[str]:
    from cnnlab.tasks import task_names  # why lazy: the registry is read when a config is checked, not imported

    return task_names()


def _is_task(name: str) -> bool:
    return name in _task_names()
