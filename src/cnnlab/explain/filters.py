"""What a conv layer holds and what it outputs: its filters and one image's feature maps, as grids.

>>> import torch
>>> grid_shape(64), grid_shape(10), grid_shape(6)
((8, 8), (3, 4), (2, 3))
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.explain.base import prepared
from cnnlab.explain.figures import save
from cnnlab.explain.layers import conv_layer_names, get_layer
from cnnlab.report.plots import pyplot, show_image


def grid_shape(count: int) -> tuple[int, int]:
    """(rows, cols) of the squarest grid holding ``count`` cells, cols >= rows: 64 -> 8x8."""
    cols = math.ceil(math.sqrt(count))
    return math.ceil(count / cols), cols


def first_conv_layer(model: nn.Module) -> str:
    names = conv_layer_names(model)
    if not names:
        raise CnnlabError(f"{type(model).__name__} has no conv layer")
    return names[0]


def filter_images(weight: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Conv weights (K, C, kh, kw) -> images (K, kh, kw, 3) or (K, kh, kw) in [0, 1], and whether in colour.

    Each filter is scaled by its own range: a filter's pattern, not its size, is what a grid can show.
    Filters with 3 input channels are RGB; with another count, the mean over input channels is grey.
    """
    w = weight.detach().float().cpu()
    colour = w.shape[1] == 3
    w = w.permute(0, 2, 3, 1) if colour else w.mean(dim=1)  # (K, kh, kw, 3) or (K, kh, kw)
    flat = w.reshape(w.shape[0], -1)
    lo, hi = flat.min(1).values, flat.max(1).values
    shape = (-1,) + (1,) * (w.ndim - 1)
    return (w - lo.view(shape)) / (hi - lo).clamp_min(1e-12).view(shape), colour


def filters_figure(model: nn.Module, layer: str | None, path: Path, title: str = "") -> dict:
    """Draw a conv layer's filters (default the first conv layer) into ``path``."""
    name = layer or first_conv_layer(model)
    conv = get_layer(model, name)
    images, colour = filter_images(conv.weight)
    k = len(images)
    rows, cols = grid_shape(k)
    plt = pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9 + 0.2, rows * 0.9 + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img in zip(axes.flat, images):
        ax.imshow(img.numpy(), cmap=None if colour else "gray", vmin=0, vmax=1, interpolation="nearest")
    c_in = conv.weight.shape[1]
    kind = "RGB" if colour else ("grey" if c_in == 1 else f"mean over {c_in} input channels")
    fig.suptitle(f"{title}{name}: {k} filters {tuple(conv.weight.shape[2:])}, {kind}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))  # room for the title
    save(fig, path)
    return {"figure": str(path), "layer": name, "filters": k, "grid": [rows, cols], "colour": colour}


def layer_output(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """What ``layer`` outputs for model inputs ``x`` (a forward hook, removed even on error; mode restored)."""
    module = get_layer(model, layer)
    captured: list[torch.Tensor] = []
    with prepared(model), torch.no_grad():
        module.register_forward_hook(lambda m, i, o: captured.append(o.detach()))  # prepared() removes it
        model(x)
    return captured[0]


def activations_figure(model: nn.Module, layer: str, x: torch.Tensor, image_uint8: torch.Tensor, path: Path,
                       caption: str = "") -> dict:
    """The feature maps of ``layer`` for one image (1, C, H, W), one grey cell per channel, the input first."""
    maps = layer_output(model, layer, x)[0]  # (K, h, w)
    k = maps.shape[0]
    rows, cols = grid_shape(k + 1)
    plt = pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.0 + 0.2, rows * 1.05 + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    show_image(axes.flat[0], image_uint8)
    axes.flat[0].set_title("input", fontsize=6)
    for i, (ax, m) in enumerate(zip(list(axes.flat)[1:], maps)):
        ax.imshow(m.cpu().numpy(), cmap="viridis")
        ax.set_title(str(i), fontsize=6)
    fig.suptitle(f"{caption}{layer}: {k} feature maps {tuple(maps.shape[1:])}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96))  # room for the title
    save(fig, path)
    peak = maps.flatten(1).max(1).values
    return {"figure": str(path), "layer": layer, "channels": k, "size": list(maps.shape[1:]),
            "most_active_channels": peak.argsort(descending=True)[:5].tolist()}
