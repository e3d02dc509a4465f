"""What excites a neuron: for each channel of a conv layer, the test image that drives it highest.

For channel k, every searched image's activation map A_k (h, w) is reduced to
its maximum; the image with the largest one wins, and the guided-backprop map
of that single activation A_k(i, j) (Captum's ``NeuronGuidedBackprop``) shows
which of its pixels produced it. ``channels`` picks the channels (default the first N); given one
image (``--image`` / ``--index``), every channel is explained on that image: its peak there.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.explain.base import prepared, require_captum
from cnnlab.explain.figures import draw_map, save
from cnnlab.explain.filters import layer_output
from cnnlab.explain.layers import get_layer
from cnnlab.report.plots import pyplot, show_image


def top_images(model: nn.Module, layer: str, x: torch.Tensor, channels: int | list[int], batch_size: int = 500):
    """For each channel (a list, or 0..channels-1): (best image index, its peak activation, the (i, j) of the peak)."""
    picked = list(range(channels)) if isinstance(channels, int) else list(channels)
    best = torch.full((len(picked),), -float("inf"))
    where = torch.zeros(len(picked), 3, dtype=torch.long)  # image, i, j
    for start in range(0, len(x), batch_size):
        full = layer_output(model, layer, x[start:start + batch_size])  # (n, C, h, w)
        if start == 0:
            check_channels(layer, picked, full.shape[1], isinstance(channels, int))
        a = full[:, picked]  # (n, k, h, w)
        n, k, h, w = a.shape
        peak, pos = a.reshape(n, k, h * w).max(dim=2)  # (n, k)
        top, img = peak.max(dim=0)  # (k,)
        better = top > best
        best[better] = top[better]
        where[better, 0] = img[better] + start
        flat = pos[img, torch.arange(k)]
        where[better, 1] = (flat // w)[better]
        where[better, 2] = (flat % w)[better]
    return where, best


def check_channels(layer: str, channels: list[int], available: int, counted: bool) -> None:
    """One line when a requested channel is not in the layer."""
    outside = [c for c in channels if not 0 <= c < available]
    if outside:
        if counted:
            raise CnnlabError(f"layer {layer} has {available} channels; --count must be at most that")
        raise CnnlabError(f"--channels {','.join(map(str, outside))}: layer {layer} has {available} channels "
                          f"(0-{available - 1})")


def parse_channels(text: str) -> list[int]:
    """``"3,17,42"`` -> ``[3, 17, 42]``; anything else is one line."""
    try:
        channels = [int(part) for part in text.split(",")]
    except ValueError:
        raise CnnlabError(f"--channels {text[:60]!r} must be channel numbers separated by commas, e.g. 3,17,42") \
            from None
    if not channels or len(channels) > 64 or len(set(channels)) != len(channels):
        raise CnnlabError(f"--channels takes 1 to 64 distinct channel numbers, got {len(channels)}"
                          + (" with repeats" if len(set(channels)) != len(channels) else ""))
    return channels


def neurons_figure(model: nn.Module, layer: str, x: torch.Tensor, images_uint8: torch.Tensor, count: int | list[int],
                   path: Path, indices: list[int] | None = None, caption: str = "the test image exciting each "
                   "channel most", image_name: str | None = None) -> dict:
    """A grid (2 x count/2 for even counts) of [image above, guided-backprop map below] per channel.

    ``count`` is a number of channels (the first ones) or a list of channel numbers.
    """
    require_captum()
    from captum.attr import NeuronGuidedBackprop

    if isinstance(count, int) and count < 1:
        raise CnnlabError(f"--count must be at least 1, got {count}")
    module = get_layer(model, layer)
    channels = list(range(count)) if isinstance(count, int) else list(count)
    where, best = top_images(model, layer, x, count)
    count = len(channels)
    maps = []
    for k in range(count):
        img, i, j = (int(v) for v in where[k])
        with prepared(model), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
            xi = x[img:img + 1].detach().clone().requires_grad_(True)
            g = NeuronGuidedBackprop(model, module).attribute(xi, neuron_selector=(channels[k], i, j))  # (1, C, H, W)
        maps.append(g.detach().abs().amax(dim=1)[0])  # (H, W)
    rows = 2 if count > 1 and count % 2 == 0 else 1
    cols = count // rows
    plt = pyplot()
    fig, axes = plt.subplots(2 * rows, cols, figsize=(max(cols * 1.5 + 0.2, 4.6), rows * 3.1 + 0.5),
                             squeeze=False)  # at least as wide as the title
    for ax in axes.flat:
        ax.axis("off")
    for k in range(count):
        r, c = divmod(k, cols)
        img = int(where[k, 0])
        show_image(axes[2 * r, c], images_uint8[img])
        shown = indices[img] if indices is not None else img
        where_from = image_name or f"test #{shown}"
        axes[2 * r, c].set_title(f"ch {channels[k]}: {where_from}\nmax {float(best[k]):.2f}", fontsize=7)
        draw_map(axes[2 * r + 1, c], images_uint8[img], maps[k], signed=False, mode="heat map")
    fig.suptitle(f"{layer}: {caption} (top),\nguided backprop of its peak activation (bottom)", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.93))  # room for the title
    save(fig, path)
    return {"figure": str(path), "layer": layer, "channels": [
        {"channel": channels[k], "index": (indices[int(where[k, 0])] if indices is not None else int(where[k, 0])),
         "activation": round(float(best[k]), 4), "at": [int(where[k, 1]), int(where[k, 2])]} for k in range(count)]}
