"""Images in every form a notebook holds them, turned into one (N, C, H, W) uint8 batch.

Accepted: a path to an image file or a folder of them (``str`` or ``pathlib.Path``), a PIL image,
a NumPy array (H, W), (H, W, C) or a batch (N, H, W[, C]) of uint8 pixels or floats on [0, 1], a
torch tensor (C, H, W) or (N, C, H, W) of the same, or a list mixing any of these. Every form goes
through the same conversion as ``cnnlab predict`` on a file (``cnnlab.data.folder.fit_image``), so a
PNG, the PIL image read from it, its NumPy array and its tensor give the same pixels.

>>> import numpy as np
>>> batch, names = as_uint8_batch(np.zeros((5, 7), np.uint8), (1, 4, 4), "resize")
>>> tuple(batch.shape), names
((1, 1, 4, 4), ['array[0]'])
>>> as_uint8_batch(np.zeros((5, 7), np.int16), (1, 4, 4), "resize")
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: array[0] has dtype int16; give uint8 pixels (0..255) or floats on [0, 1]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `import cnnlab` reaches this package, and it must not load torch

MAX_SIDE = 16384  # an in-memory image larger than this on a side is refused (a file has Pillow's bomb check)


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    """uint8 as it is; floats on [0, 1] scaled and rounded to 0..255; anything else a one-line error."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise CnnlabError(f"{name} holds NaN or infinite values; give finite pixels on [0, 1]")
        low, high = float(array.min(initial=0.0)), float(array.max(initial=0.0))
        if low < 0.0 or high > 1.0:
            raise CnnlabError(f"{name} has float values in [{low:.3g}, {high:.3g}]; float pixels must lie on [0, 1] "
                              "(divide uint8 pixels by 255, or pass them as uint8)")
        return np.rint(array.astype(np.float64) * 255.0).astype(np.uint8)
    raise CnnlabError(f"{name} has dtype {array.dtype}; give uint8 pixels (0..255) or floats on [0, 1]")


def _pil_from_hwc(array: np.ndarray, name: str):
    """(H, W) or (H, W, C) with C in 1, 3, 4 -> a PIL image (L, RGB or RGBA)."""
    from PIL import Image

    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] not in (3, 4):
        raise CnnlabError(f"{name} has shape {tuple(array.shape)}: (H, W, C) needs C of 1, 3 or 4 channels")
    h, w = array.shape[:2]
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise CnnlabError(f"{name} is {h}x{w} pixels; each side must be 1..{MAX_SIDE}")
    return Image.fromarray(np.ascontiguousarray(_to_uint8(array, name)))


def _split_array(array: np.ndarray, name: str, channels_first: bool) -> list[tuple[str, Any]]:
    """One array -> its images as (name, PIL image): a single image or a batch along the first axis."""
    shape = tuple(array.shape)
    if channels_first:  # torch layout: (C, H, W) or (N, C, H, W)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[1] not in (1, 3, 4):
            raise CnnlabError(f"{name} has shape {shape}; a tensor must be (C, H, W) or (N, C, H, W) with C of "
                              "1, 3 or 4 (add a channel axis to a (H, W) image: t[None])")
        array = array.transpose(0, 2, 3, 1)  # (N, H, W, C)
        return [(f"{name}[{i}]", _pil_from_hwc(a, f"{name}[{i}]")) for i, a in enumerate(array)]
    # NumPy layout: (H, W); (H, W, C) when the last axis is 1, 3 or 4 channels; else a batch (N, H, W[, C])
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        return [(name, _pil_from_hwc(array, name))]
    if array.ndim in (3, 4):
        return [(f"{name}[{i}]", _pil_from_hwc(a, f"{name}[{i}]")) for i, a in enumerate(array)]
    raise CnnlabError(f"{name} has shape {shape}; an array must be (H, W), (H, W, C) or a batch (N, H, W[, C])")


def _items(images: Any) -> list[tuple[str, Any]]:
    """Every image as (name, path or PIL image), in order."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise CnnlabError("no images given; pass a path, a folder, a PIL image, an array or a tensor")
        out = []
        for i, item in enumerate(images):
            if isinstance(item, (list, tuple)):
                raise CnnlabError(f"item {i} is a nested {type(item).__name__}; give a flat list of images")
            out.extend(_items_one(item, i))
        return out
    return _items_one(images, 0)


def _items_one(item: Any, index: int) -> list[tuple[str, Any]]:
    from PIL import Image

    from cnnlab.data.folder import expand_image_paths

    if isinstance(item, (str, os.PathLike)):
        return [(p, Path(p)) for p in expand_image_paths([os.fspath(item)])]
    if isinstance(item, Image.Image):
        w, h = item.size
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise CnnlabError(f"image[{index}] is {w}x{h} pixels; each side must be 1..{MAX_SIDE}")
        return [(f"image[{index}]", item)]
    if isinstance(item, np.ndarray):
        return _split_array(item, f"array[{index}]", channels_first=False)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        torch = None
    if torch is not None and isinstance(item, torch.Tensor):
        return _split_array(item.detach().cpu().numpy(), f"tensor[{index}]", channels_first=True)
    raise CnnlabError(f"cannot read an image from a {type(item).__name__}; give a path, a folder, a PIL image, "
                      "a NumPy array or a torch tensor")


def image_items(images: Any) -> list[tuple[str, Any]]:
    """Every image in ``images`` as (name, ``Path`` or PIL image), in order, checked but not yet decoded.

    Names are the file paths, or ``image[i]`` / ``array[i]`` / ``tensor[i]`` (``[i][j]`` inside a batch)
    for in-memory images, so results can say which image each line is about.
    """
    return _items(images)


def decode_items(items: list[tuple[str, Any]], input_size: tuple[int, int, int], policy: str,
                 pretrained_cfg: dict | None = None):
    """(name, path or PIL image) items -> a (N, C, H, W) uint8 tensor fitted to ``input_size``.

    With a ``pretrained_cfg`` (a pretrained model's, or a run fine-tuned from one) images are prepared as
    its weights expect (``cnnlab.transfer.pretrained.fit_for_weights``), as ``cnnlab predict`` does.
    """
    import warnings

    import torch
    from PIL import Image

    from cnnlab.data.folder import decode_image, fit_image

    c, h, w = input_size
    if h != w:
        raise CnnlabError(f"the model's images are {h}x{w}; only square inputs are supported")
    mode = "L" if c == 1 else "RGB"
    from functools import partial

    if pretrained_cfg is not None:  # the weights' own interpolation and crop fraction
        from cnnlab.transfer.pretrained import decode_for_weights, fit_for_weights

        decode_file, fit = partial(decode_for_weights, cfg=pretrained_cfg), partial(fit_for_weights, cfg=pretrained_cfg)
    else:
        decode_file = partial(decode_image, size=h, policy=policy, mode=mode)
        fit = partial(fit_image, size=h, policy=policy, mode=mode)
    arrays = []
    for name, item in items:
        if isinstance(item, Path):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    arrays.append(decode_file(item))
            except CnnlabError:
                raise
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise CnnlabError(f"cannot read image {name}: it is too large to decode safely ({exc})") from None
            except Exception as exc:  # noqa: BLE001 -- Pillow raises many types for a broken file
                raise CnnlabError(f"cannot read image {name}: {exc}") from None
        else:
            arrays.append(fit(item))
    return torch.from_numpy(np.stack(arrays))  # (N, C, H, W) uint8


def as_uint8_batch(images: Any, input_size: tuple[int, int, int], policy: str, pretrained_cfg: dict | None = None):
    """``images`` (any accepted form) -> ((N, C, H, W) uint8 tensor fitted to ``input_size``, names)."""
    items = image_items(images)
    return decode_items(items, input_size, policy, pretrained_cfg), [name for name, _ in items]


def items_as_files(images: Any, folder: Path) -> tuple[list[str], list[str]]:
    """Files for ``images``: paths as they are, in-memory images saved losslessly as PNG into ``folder``.

    Returns (file paths, names). Used where the library reads files only (detection letterboxes from
    the original image), so an in-memory image is treated exactly as its PNG would be.
    """
    from PIL import Image

    files, names = [], []
    for i, (name, item) in enumerate(image_items(images)):
        if isinstance(item, Path):
            files.append(str(item))
        else:
            target = folder / f"{i:06d}.png"
            (item if item.mode in ("L", "RGB", "RGBA") else item.convert("RGB")).save(target)
            files.append(str(target))
        names.append(name)
    return files, names
