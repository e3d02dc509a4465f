"""Classifying image files with a trained run.

>>> predict_files("runs/mnist-fast", ["digit.png"], k=3)  # doctest: +SKIP
[{'image': 'digit.png', 'top': [{'class': '7', 'probability': 0.998}, ...]}]

A folder among the paths stands for the image files directly inside it (one level, sorted by
name; other files are left out), so ``predict RUN photos/`` classifies every image in ``photos``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.folder import decode_image, expand_image_paths
from cnnlab.errors import CnnlabError
from cnnlab.native_size import check_native_size, classify_native
from cnnlab.runs import load_run
from cnnlab.checkpoint import what_file_is
from cnnlab.transfer.pretrained import decode_for_weights

CHUNK = 256  # images decoded and classified at a time, so a large folder does not fill memory


def load_images(paths: list[str], input_size: tuple[int, int, int], policy: str,
                pretrained_cfg: dict | None = None) -> torch.Tensor:
    """Decode files to a (N, C, H, W) uint8 batch matching ``input_size``.

    ``pretrained_cfg`` (a pretrained model's) decodes as its weights expect instead: its
    interpolation and crop fraction (:func:`cnnlab.transfer.pretrained.decode_for_weights`).
    """
    from PIL import Image

    c, h, w = input_size
    if h != w:
        raise CnnlabError(f"the run's images are {h}x{w}; only square inputs are supported by predict")
    out = []
    for path in paths:
        if not Path(path).is_file():
            raise CnnlabError(f"image file {path} does not exist")
        try:
            with warnings.catch_warnings():
                # Pillow only warns between its pixel limit and twice it; refuse those too, in one line.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                if pretrained_cfg is not None:
                    out.append(decode_for_weights(Path(path), pretrained_cfg))
                else:
                    out.append(decode_image(Path(path), h, policy, "L" if c == 1 else "RGB"))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise CnnlabError(f"cannot read image {path}: it is too large to decode safely ({exc})") from None
        except Exception as exc:  # Pillow raises many types for a broken file
            raise CnnlabError(f"cannot read image {path}: {exc}") from None
    return torch.from_numpy(np.stack(out))


@torch.no_grad()
def predict_files(run_dir: str, paths: list[str], k: int = 3, native_size: bool = False) -> list[dict]:
    """Top-``k`` classes and probabilities for each image file (or each image in a folder).

    ``k`` above the run's class count shows every class; below 1 is an error. ``native_size``
    classifies each image at its own size (a global-pooling network only: :mod:`cnnlab.native_size`).
    """
    if k < 1:
        raise CnnlabError(f"--top-k must be at least 1, got {k}")
    if Path(run_dir).is_file():  # a checkpoint, a TorchScript export, ...: say what predict reads instead
        kind = what_file_is(Path(run_dir)) or "it looks like a checkpoint or state dict"
        raise CnnlabError(f"{run_dir} is a file, not a run directory ({kind}); cnnlab predict reads a run directory "
                          "written by `cnnlab train` or a MODEL.onnx written by `cnnlab export --format onnx`")
    paths = expand_image_paths(paths)
    run = load_run(run_dir)
    if native_size:
        check_native_size(run.model, run.input_size, run_dir)
        return [_top(path, classify_native(run, path), run.classes, k) for path in paths]
    results = []
    for start in range(0, len(paths), CHUNK):
        chunk = paths[start:start + CHUNK]
        images = load_images(chunk, run.input_size, run.config.data.resize, run.pretrained_cfg)
        logits = run.model(run.normalize(images.float() / 255.0))
        top = logits.softmax(1).topk(min(k, run.num_classes), dim=1)
        results.extend(
            {"image": path, "top": [{"class": run.classes[int(i)], "probability": round(float(p), 4)}
                                    for p, i in zip(values, indices)]}
            for path, values, indices in zip(chunk, top.values, top.indices)
        )
    return results


def _top(path: str, probs: torch.Tensor, classes: list[str], k: int) -> dict:
    top = probs.topk(min(k, len(classes)))
    return {"image": path, "top": [{"class": classes[int(i)], "probability": round(float(p), 4)}
                                   for p, i in zip(top.values, top.indices)]}
