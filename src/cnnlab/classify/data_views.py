"""``cnnlab data info`` and ``cnnlab data preview`` for classification datasets (one label per image).

:func:`dataset_info` gives the JSON object and the text lines the command prints;
:func:`dataset_preview` draws a grid of training images titled with their classes.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from cnnlab.data.augment import BatchAugment
from cnnlab.data.datasets import load_dataset
from cnnlab.data.stats import channel_stats
from cnnlab.report.plots import image_grid_axes, show_image


def dataset_info(cfg) -> tuple[dict[str, Any], list[str]]:
    """``(info, lines)`` for the data config ``cfg``: counts per class and split, image size, mean/std."""
    data = load_dataset(cfg)
    counts = {}
    for split, labels in (("train", data.train_y), ("test", data.test_y)):
        bins = torch.bincount(labels, minlength=data.num_classes).tolist()
        counts[split] = dict(zip(data.classes, bins))
    mean, std = channel_stats(data.train_x)
    info = {"name": data.name, "source": data.source, "image_size": list(data.input_size),
            "classes": data.classes, "train": len(data.train_y), "test": len(data.test_y),
            "per_class": counts, "train_mean": mean, "train_std": std, "skipped_images": len(data.skipped)}
    c, h, w = data.input_size
    width = max(len(n) for n in data.classes) + 2
    lines = [f"{data.name}  ({data.source})",
             f"images {h}x{w}, {c} channel(s); {len(data.train_y)} train, {len(data.test_y)} test, "
             f"{data.num_classes} classes",
             f"train mean {mean}  std {std}",
             f"{'class':<{width}}{'train':>8}{'test':>8}"]
    lines += [f"{name:<{width}}{counts['train'][name]:>8}{counts['test'][name]:>8}" for name in data.classes]
    if data.skipped:
        lines.append(f"skipped {len(data.skipped)} unreadable images")
    return info, lines


def dataset_preview(cfg, count: int, seed: int, augment: bool, notice: Callable[[str], None]):
    """A matplotlib figure of ``count`` training images drawn with ``seed`` (augmented with ``augment``)."""
    data = load_dataset(cfg)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.train_y), generator=gen)[:count]
    images = data.train_x[idx].float() / 255.0
    augmenter = BatchAugment.for_images(cfg.augment, data.train_x)
    if augment:
        if not augmenter.active:
            notice("note: this config enables no augmentation; set data.augment.* or name a preset that does")
        images = augmenter(images, gen)
    images = (images * 255).round().clamp(0, 255).to(torch.uint8)
    _, fig, axes = image_grid_axes(len(images))
    for ax, img, label in zip(axes, images, data.train_y[idx]):
        show_image(ax, img)
        ax.set_title(data.classes[int(label)], fontsize=8)
    fig.suptitle(f"{data.name}: {'augmented' if augment else 'raw'} training samples", fontsize=10)
    return fig
