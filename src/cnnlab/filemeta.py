"""Checking what a file says about the images a model takes, as user input is checked.

A checkpoint, an ONNX or TorchScript export and a weights file each record an input size
(C, H, W), class names and maybe a normalisation (mean, std). cnnlab wrote them, but the file
on disk may be damaged, edited or made by someone else, and a trusted ``input_size`` of
100000x100000 allocates terabytes while ``mean: [nan]`` makes every loss NaN. So every reader
of such a file passes the values through :func:`check_image_meta`, whose bounds are the ones a
user's ``data.image_size`` meets (:data:`cnnlab.config.MAX_IMAGE_SIZE`). It imports neither
torch nor NumPy: ``cnnlab predict model.onnx`` uses it too.

>>> check_image_meta({"input_size": [1, 28, 28], "classes": ["0", "1"], "mean": [0.13], "std": [0.31]},
...                  "final.pt").input_size
(1, 28, 28)
>>> check_image_meta({"input_size": [1, 100000, 100000], "classes": ["0"]}, "final.pt")
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: final.pt: 'input_size' is [1, 100000, 100000]; expected 3 integers (channels in [1, 65,536], height and width in [1, 4,096], the range of data.image_size); the file is damaged or was not written by cnnlab
>>> check_image_meta({"input_size": [1, 8, 8], "classes": ["a"], "mean": [float("nan")], "std": [1.0]}, "m.onnx")
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: m.onnx: 'mean' is [nan]; expected 1 finite number(s) in [-1,000, 1,000]; the file is damaged or was not written by cnnlab
"""

from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

from cnnlab.config import MAX_IMAGE_SIZE
from cnnlab.errors import CnnlabError, short_repr

MAX_CHANNELS = 65_536  # a feature head's "image" is (D, 1, 1): D channels, a few thousand at most
MAX_CLASSES = 1_000_000
MAX_CLASS_NAME = 1_000  # characters
MAX_STAT = 1_000.0  # |mean| and std of a normalisation: images are on [0, 1] (or [0, 255] at the most)


class ImageMeta(NamedTuple):
    input_size: tuple[int, int, int]  # (C, H, W)
    classes: list[str]
    mean: list[float] | None
    std: list[float] | None


def _bad(source: str, key: str, value: Any, expected: str) -> CnnlabError:
    return CnnlabError(f"{source}: '{key}' is {short_repr(value, 80)}; expected {expected}; "
                       "the file is damaged or was not written by cnnlab")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_input_size(value: Any, source: str, key: str = "input_size") -> tuple[int, int, int]:
    """(C, H, W) within the bounds of user input, or one line naming the file and the value."""
    if (not isinstance(value, (list, tuple)) or len(value) != 3 or not all(_is_int(v) for v in value)
            or not 1 <= value[0] <= MAX_CHANNELS or not all(1 <= v <= MAX_IMAGE_SIZE for v in value[1:])):
        raise _bad(source, key, value, f"3 integers (channels in [1, {MAX_CHANNELS:,}], height and width in "
                                       f"[1, {MAX_IMAGE_SIZE:,}], the range of data.image_size)")
    return (value[0], value[1], value[2])


def check_classes(value: Any, source: str, outputs: int | None = None, key: str = "classes") -> list[str]:
    """A list of 1 to MAX_CLASSES names (one per model output when ``outputs`` is known)."""
    if (not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_CLASSES
            or not all(isinstance(c, str) and len(c) <= MAX_CLASS_NAME for c in value)):
        raise _bad(source, key, value, f"a list of 1 to {MAX_CLASSES:,} class names")
    if outputs is not None and outputs != len(value):
        raise CnnlabError(f"{source}: the model has {outputs} outputs but its '{key}' names {len(value)} "
                          "classes; the file is damaged or was not written by cnnlab; export the run again")
    return list(value)


def check_normalization(mean: Any, std: Any, channels: int, source: str) -> tuple[list | None, list | None]:
    """Both None, or ``channels`` finite numbers each (std above 0), as lists of floats."""
    out = []
    for key, value, positive in (("mean", mean, False), ("std", std, True)):
        if value is not None and (
                not isinstance(value, (list, tuple)) or len(value) != channels
                or not all(_is_number(v) and math.isfinite(v) and abs(v) <= MAX_STAT and (v > 0 or not positive)
                           for v in value)):
            span = f"(0, {MAX_STAT:,.0f}]" if positive else f"[-{MAX_STAT:,.0f}, {MAX_STAT:,.0f}]"
            raise _bad(source, key, value, f"{channels} finite number(s) in {span}")
        out.append(None if value is None else [float(v) for v in value])
    if (out[0] is None) != (out[1] is None):
        missing = "std" if out[1] is None else "mean"
        raise _bad(source, missing, None, "both mean and std, or neither")
    return out[0], out[1]


def check_image_meta(meta: Mapping[str, Any], source: str, outputs: int | None = None) -> ImageMeta:
    """Validate ``meta``'s input_size, classes, mean and std (see the module's doctests)."""
    input_size = check_input_size(meta.get("input_size"), source)
    classes = check_classes(meta.get("classes"), source, outputs)
    mean, std = check_normalization(meta.get("mean"), meta.get("std"), input_size[0], source)
    return ImageMeta(input_size, classes, mean, std)
