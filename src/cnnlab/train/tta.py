"""Test-time augmentation: the mean of the logits over transformed copies of each batch.

``flip``: the image and its mirror image (left-right). ``translate``: the image and two shifted
copies (for data that a mirror changes, such as digits). ``flip-translate``: the flip pair, each
also shifted by ``shift`` pixels up-left and down-right (reflect padding fills the border), six
views in all; airbench's evaluation uses the same views. Inputs are the normalised batches the
model sees, (N, C, H, W).

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
>>> x = torch.randn(3, 1, 2, 2)
>>> both = (model(x) + model(x.flip(3))) / 2
>>> torch.allclose(tta_logits(model, x, "flip"), both)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TTA_MODES = ("none", "flip", "translate", "flip-translate")


def translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Shift content by (dy, dx) pixels (positive: down/right), reflect-padding the uncovered border."""
    n, c, h, w = x.shape
    p = max(abs(dy), abs(dx))
    if p == 0:
        return x
    padded = F.pad(x, (p, p, p, p), mode="reflect")  # (N, C, H+2p, W+2p)
    return padded[:, :, p - dy: p - dy + h, p - dx: p - dx + w]


def tta_views(x: torch.Tensor, mode: str, shift: int = 2) -> list[torch.Tensor]:
    """The transformed copies of ``x`` that ``mode`` averages over."""
    if mode not in TTA_MODES:
        raise ValueError(f"tta mode must be one of {', '.join(TTA_MODES)}, got {mode!r}")
    views = [x]
    if mode in ("flip", "flip-translate"):
        views.append(x.flip(3))
    if mode in ("translate", "flip-translate"):  # each view so far, shifted both ways
        views += [translate(v, d, d) for v in list(views) for d in (-shift, shift)]
    return views


def tta_logits(model, x: torch.Tensor, mode: str, shift: int = 2) -> torch.Tensor:
    """Mean logits of ``model`` over :func:`tta_views`; ``none`` is plain ``model(x)``."""
    if mode == "none":
        return model(x)
    views = tta_views(x, mode, shift)
    # One forward over all views at once: (V*N, C, H, W) -> (V, N, classes) -> mean over V.
    logits = model(torch.cat(views)).float()
    return logits.view(len(views), len(x), -1).mean(0)
