"""Pictures of attribution maps: heat map, overlay and masked modes, and the one-figure-per-image layout.

A map (H, W) is scaled for display by its own largest magnitude: a *signed* map
(integrated gradients, occlusion, gradient SHAP) to [-1, 1] on a blue-white-red
scale (red: evidence for the target class, blue: against); a magnitude map
(saliency, Grad-CAM, guided backprop) to [0, 1] on ``inferno``. The overlay
lays the positive part over the image in grey; the masked mode keeps the image
only where the positive part is strong (the map is the image's alpha).

>>> import torch
>>> scaled(torch.tensor([[2., -4.]]), signed=True).tolist()
[[0.5, -1.0]]
>>> positive_part(torch.tensor([[2., -4.]]), signed=True).tolist()
[[1.0, 0.0]]
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from cnnlab.fileio import atomic_path, png_metadata
from cnnlab.report.plots import pyplot, show_image

MODES = ("heat map", "overlay", "masked")


def scaled(m: torch.Tensor, signed: bool) -> torch.Tensor:
    """``m`` divided by its largest magnitude (an all-zero map stays zero)."""
    peak = m.abs().max() if signed else m.max()
    return m / peak if float(peak) > 0 else torch.zeros_like(m)


def positive_part(m: torch.Tensor, signed: bool) -> torch.Tensor:
    """The evidence for the target, scaled to [0, 1]."""
    m = m.clamp_min(0)
    peak = m.max()
    return m / peak if float(peak) > 0 else torch.zeros_like(m)


def image01(image_uint8: torch.Tensor) -> np.ndarray:
    """(C, H, W) uint8 -> (H, W, 3) float in [0, 1] (greyscale repeated)."""
    img = image_uint8.detach().cpu().float() / 255.0
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return img[:3].permute(1, 2, 0).numpy()


def draw_map(ax, image_uint8: torch.Tensor, m: torch.Tensor, signed: bool, mode: str) -> None:
    """Draw one map in one of :data:`MODES` on ``ax``."""
    m = m.detach().cpu().float()
    if mode == "heat map":
        if signed:
            ax.imshow(scaled(m, True).numpy(), cmap="bwr", vmin=-1, vmax=1)
        else:
            ax.imshow(scaled(m, False).numpy(), cmap="inferno", vmin=0, vmax=1)
    elif mode == "overlay":
        grey = image01(image_uint8).mean(axis=2)
        ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
        ax.imshow(positive_part(m, signed).numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
    elif mode == "masked":
        alpha = positive_part(m, signed).numpy()[..., None]  # (H, W, 1)
        ax.imshow(image01(image_uint8) * alpha, vmin=0, vmax=1)
    else:
        raise ValueError(f"unknown display mode {mode!r}; use one of {MODES}")
    ax.set_xticks([])
    ax.set_yticks([])


def explanation_figure(image_uint8: torch.Tensor, caption: Sequence[str], maps: dict[str, torch.Tensor],
                       signed: dict[str, bool], path: Path) -> Path:
    """One image: the input and its caption in the first column, then a column per method, a row per mode."""
    plt = pyplot()
    cols = 1 + len(maps)
    fig, axes = plt.subplots(len(MODES), cols, figsize=(1.9 * cols + 0.3, 1.9 * len(MODES) + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    show_image(axes[0, 0], image_uint8)
    axes[0, 0].set_title("input", fontsize=8)
    axes[1, 0].text(0.0, 0.95, "\n".join(caption), fontsize=7, va="top", ha="left", family="monospace",
                    transform=axes[1, 0].transAxes)
    for col, (name, m) in enumerate(maps.items(), start=1):
        for row, mode in enumerate(MODES):
            ax = axes[row, col]
            ax.axis("on")
            draw_map(ax, image_uint8, m, signed[name], mode)
            if row == 0:
                ax.set_title(name.replace("_", " "), fontsize=8)
            if col == 1:
                ax.set_ylabel(mode, fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def save(fig, path: Path, dpi: int = 100) -> Path:
    """Write a figure as PNG atomically, marked as an ``explain`` output (see cnnlab.rundir), and close it."""
    plt = pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata=png_metadata("explain"))
    plt.close(fig)
    return path
