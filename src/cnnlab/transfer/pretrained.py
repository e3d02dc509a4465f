"""ImageNet-pretrained weights in use: images prepared the way the weights expect, and a
pretrained name (``efficientnet_lite0.in1k``) read as a run.

The table of published weights, their checksums and the building of ``ARCH.TAG`` models are
:mod:`cnnlab.models.pretrained` (``create_model("efficientnet_lite0.in1k")``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cnnlab.config import config_from_dict
from cnnlab.data.folder import _refuse_bomb  # private in data/ (another owner's file): to be made public there
from cnnlab.errors import CnnlabError
from cnnlab.models.pretrained import create_pretrained, lookup, split_name, weights_path
from cnnlab.runs import LoadedRun


@lru_cache(maxsize=None)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k WordNet ids in class-index order (their sorted order, shipped with cnnlab)."""
    text = (Path(__file__).with_name("imagenet_wnids.txt")).read_text(encoding="ascii")
    return tuple(text.split())


RESAMPLE = {"bicubic": 3, "bilinear": 2}  # Pillow's Image.BICUBIC / Image.BILINEAR


def decode_for_weights(path, cfg: dict):
    """One image file -> uint8 (3, S, S) as ``cfg`` (a ``pretrained_cfg``) says (see :func:`fit_for_weights`)."""
    with Image.open(path) as img:
        _refuse_bomb(img)
        return fit_for_weights(img, cfg)


def fit_for_weights(img, cfg: dict):
    """A PIL image -> uint8 (3, S, S) as ``cfg`` says: RGB, short side resized to ``S / crop_fraction``
    with its interpolation, the central S x S kept. Files and in-memory images (the Python API) share it.

    Greyscale, palette, 16-bit and alpha images become 8-bit RGB first (16-bit scaled by 1/257).
    """
    size = cfg["input_size"][1]
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale: 0..65535 -> 0..255
        img = Image.fromarray((np.asarray(img, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8))
    img = img.convert("RGB")
    w, h = img.size
    short = round(size / cfg["crop_fraction"])
    scale = short / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), RESAMPLE[cfg["interpolation"]])
    left, top = (img.size[0] - size) // 2, (img.size[1] - size) // 2
    array = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)
    return array.transpose(2, 0, 1)  # (3, S, S)


def is_pretrained_name(target: Any) -> bool:
    """True for ``ARCH.TAG`` naming a zoo architecture where no file or folder of that name exists."""
    return isinstance(target, (str, Path)) and not Path(target).exists() and split_name(str(target)) is not None


def load_pretrained_run(name: str, device: Any = "cpu", task: str | None = "classify"):
    """A :class:`~cnnlab.runs.LoadedRun` for ``ARCH.TAG``: what every command that reads a run needs.

    Its classes are ImageNet's 1,000 names, its normalisation the weights' own, its config the
    architecture with ``model.weights=TAG`` and center-cropped images of the weights' size.
    """
    if task not in (None, "classify"):
        raise CnnlabError(f"{name} is an ImageNet classifier; this command needs a {task} run")
    entry = lookup(name)
    model = create_pretrained(name).to(device)
    cfg = model.pretrained_cfg
    config = config_from_dict({"model": {"name": entry.arch, "options": {"weights": entry.tag}},
                               "data": {"name": "folder", "resize": "center_crop", "image_size": entry.image_size}})
    return LoadedRun(Path(name), config, model, tuple(cfg["input_size"]), list(cfg["classes"]), cfg["mean"],
                     cfg["std"], weights_path(entry), {"pretrained_cfg": {k: v for k, v in cfg.items()
                                                                          if k != "classes"}}, pretrained_cfg=cfg)
