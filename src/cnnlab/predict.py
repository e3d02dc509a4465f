"""Classifying image files with a trained run.

>>> predict_files("runs/mnist-fast", ["digit.png"], k=3)  # doctest: +SKIP
[{'image': 'digit.png', 'top': [{'class': '7', 'probability': 0.998}, ...]}]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnlab.errors import CnnlabError


def load_images(paths: list[str], input_size: tuple[int, int, int], policy: str) -> torch.Tensor:
    """Decode files to a (N, C, H, W) uint8 batch matching ``input_size``."""
    from cnnlab.data.folder import decode_image

    c, h, w = input_size
    if h != w:
        raise CnnlabError(f"the run's images are {h}x{w}; only square inputs are supported by predict")
    out = []
    for path in paths:
        if not Path(path).is_file():
            raise CnnlabError(f"image file {path} does not exist")
        try:
            out.append(decode_image(Path(path), h, policy, "L" if c == 1 else "RGB"))
        except Exception as exc:  # Pillow raises many types for a broken file
            raise CnnlabError(f"cannot read image {path}: {exc}") from None
    return torch.from_numpy(np.stack(out))


@torch.no_grad()
def predict_files(run_dir: str, paths: list[str], k: int = 3) -> list[dict]:
    """Top-``k`` classes and probabilities for each image file."""
    from cnnlab.runs import load_run

    if k < 1:
        raise CnnlabError(f"--top-k must be at least 1, got {k}")
    run = load_run(run_dir)
    images = load_images(paths, run.input_size, run.config.data.resize)
    logits = run.model(run.normalize(images.float() / 255.0))
    probs = logits.softmax(1)
    top = probs.topk(min(k, run.num_classes), dim=1)
    return [
        {"image": path, "top": [{"class": run.classes[int(i)], "probability": round(float(p), 4)}
                                for p, i in zip(values, indices)]}
        for path, values, indices in zip(paths, top.values, top.indices)
    ]
