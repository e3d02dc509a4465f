"""ImageNet-pretrained weights in use: images prepared the way the weights expect.

A pretrained name (``efficientnet_lite0.in1k``) read as a run is :func:`cnnlab.runs.load_pretrained_run`
(re-exported here, where it lived first).

The table of published weights, their checksums and the building of ``ARCH.TAG`` models are
:mod:`cnnlab.models.pretrained` (``create_model("efficientnet_lite0.in1k")``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.data.folder import refuse_bomb
from cnnlab.runs import is_pretrained_name, load_pretrained_run  # noqa: F401 (their home was here)


@lru_cache(maxsize=None)
def imagenet_wnids() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k WordNet ids in class-index order (their sorted order, shipped with cnnlab)."""
    text = (Path(__file__).with_name("imagenet_wnids.txt")).read_text(encoding="ascii")
    return tuple(text.split())


RESAMPLE = {"bicubic": 3, "bilinear": 2}  # Pillow's Image.BICUBIC / Image.BILINEAR


def decode_for_weights(path, cfg: dict):
    """One image file -> uint8 (3, S, S) as ``cfg`` (a ``pretrained_cfg``) says (see :func:`fit_for_weights`)."""
    with Image.open(path) as img:
        refuse_bomb(img)
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


