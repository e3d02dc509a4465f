"""``cnnlab predict --native-size``: classify each image at its own size, for networks that end in global pooling.

A network whose head flattens a fixed H x W map only takes its training size; one that pools
globally before the classifier ("fully convolutional networks have no limitation on input size")
takes any size above its smallest. Whether a model is of the second kind is *measured*, not read
from its class: it must return one row of class scores for inputs larger and smaller than its
training size, and at least one adaptive (global) pooling layer must be in it.

>>> from cnnlab.models import create_model
>>> takes_any_size(create_model("convnet", blocks=2, filters=8, global_pool="avg", dense=0), (1, 28, 28))
True
>>> takes_any_size(create_model("convnet", blocks=2, filters=8), (1, 28, 28))
False
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cnnlab.data.folder import refuse_bomb
from cnnlab.errors import CnnlabError

MAX_SIDE = 4096  # pixels per side predicted at native size (a larger image is one line, not an out-of-memory)


@torch.no_grad()
def takes_any_size(model: nn.Module, input_size: tuple[int, int, int]) -> bool:
    """Whether ``model`` pools globally and returns (1, classes) at sizes other than ``input_size``."""
    pools = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    if not any(isinstance(m, pools) for m in model.modules()):
        return False
    c, h, w = input_size
    was_training = model.training
    model.eval()
    try:
        reference = model(torch.zeros(1, c, h, w)).shape
        for dh, dw in ((h // 2 + 3, w // 4 + 5), (-(h // 4), -(w // 4))):
            if h + dh < 1 or w + dw < 1:
                continue
            if model(torch.zeros(1, c, h + dh, w + dw)).shape != reference:
                return False
    except (RuntimeError, ValueError):
        return False
    finally:
        model.train(was_training)
    return True


def check_native_size(model: nn.Module, input_size: tuple[int, int, int], run_dir) -> None:
    """One line when the run's network cannot take images at their own size."""
    if not takes_any_size(model, input_size):
        c, h, w = input_size
        raise CnnlabError(f"--native-size needs a network that ends in global pooling; {run_dir} flattens a fixed "
                          f"{h}x{w} map, so it takes only {h}x{w} images (drop --native-size: images are resized)")


def load_native(path: str, channels: int) -> torch.Tensor:
    """One image file as a (1, C, H, W) uint8 tensor at its own size (``channels`` 1: greyscale, 3: RGB)."""
    from PIL import Image

    if not Path(path).is_file():
        raise CnnlabError(f"image file {path} does not exist")
    try:
        with Image.open(path) as img:
            refuse_bomb(img)
            if max(img.size) > MAX_SIDE:
                raise CnnlabError(f"image {path} is {img.size[0]}x{img.size[1]}; --native-size takes at most "
                                  f"{MAX_SIDE} pixels a side")
            array = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except CnnlabError:
        raise
    except Exception as exc:  # Pillow raises many types for a broken file
        raise CnnlabError(f"cannot read image {path}: {exc}") from None
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)
    return torch.from_numpy(np.ascontiguousarray(array))[None]


@torch.no_grad()
def classify_native(run, path: str) -> torch.Tensor:
    """Class probabilities (classes,) of one image at its own size."""
    image = load_native(path, run.input_size[0])
    try:
        logits = run.model(run.normalize(image.float() / 255.0))
    except RuntimeError as exc:
        h, w = image.shape[2:]
        raise CnnlabError(f"image {path} ({w}x{h}) is too small for this network at its own size: "
                          f"{' '.join(str(exc).split())[:120]}") from None
    return logits.softmax(1)[0]
