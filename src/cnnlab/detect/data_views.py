"""``cnnlab data info`` and ``cnnlab data preview`` for detection datasets (boxes per image).

:func:`dataset_info` counts images and boxes per split and class; :func:`dataset_preview`
draws training images (box-aware augmentation with ``--augment``) with their boxes.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from cnnlab.data.box_augment import augment_detection_batch
from cnnlab.data.detection import read_detection_dataset
from cnnlab.data.stats import channel_stats
from cnnlab.report.plots import image_grid_axes, show_image


def dataset_info(cfg) -> tuple[dict[str, Any], list[str]]:
    """``(info, lines)`` for the data config ``cfg``: images and boxes per split and class, size, mean/std."""
    train, test, classes, problems, source = read_detection_dataset(cfg)
    per_class = {}
    for split, data in (("train", train), ("test", test)):
        labels = torch.cat(data.labels) if data.labels else torch.zeros(0, dtype=torch.long)
        per_class[split] = dict(zip(classes, torch.bincount(labels, minlength=len(classes)).tolist()))
    mean, std = channel_stats(train.images)
    info = {"name": cfg.name, "task": "detect", "source": source, "image_size": list(train.images.shape[1:]),
            "classes": classes, "train": len(train), "test": len(test), "train_boxes": train.num_boxes,
            "test_boxes": test.num_boxes, "boxes_per_class": per_class, "train_mean": mean, "train_std": std,
            "problems": problems}
    c, s, _ = train.images.shape[1:]
    width = max(len(n) for n in classes + ["class"]) + 2
    lines = [f"{cfg.name}  ({source})",
             f"detection: images letterboxed to {s}x{s}, {c} channel(s); {len(train)} train images "
             f"({train.num_boxes} boxes), {len(test)} test images ({test.num_boxes} boxes), {len(classes)} classes",
             f"train mean {mean}  std {std}",
             f"{'class':<{width}}{'train boxes':>12}{'test boxes':>12}"]
    lines += [f"{name:<{width}}{per_class['train'][name]:>12}{per_class['test'][name]:>12}" for name in classes]
    lines += [f"{kind}: {n}" for kind, n in problems.items()]
    return info, lines


def dataset_preview(cfg, count: int, seed: int, augment: bool, notice: Callable[[str], None]):
    """A matplotlib figure of ``count`` training images with their boxes, drawn with ``seed``."""
    from matplotlib.patches import Rectangle  # why lazy: matplotlib loads only for a preview

    train, _, classes, _, _ = read_detection_dataset(cfg)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(train), generator=gen)[:count].tolist()
    images = train.images[idx].float() / 255.0
    boxes, labels = [train.boxes[i] for i in idx], [train.labels[i] for i in idx]
    if augment:
        c = cfg.augment
        if not any([c.scale, c.translate, c.hflip, c.brightness, c.contrast, c.saturation]):
            notice("note: this config enables no box-aware augmentation (data.augment.scale, translate, hflip, "
                   "brightness, contrast, saturation)")
        images, boxes, labels = augment_detection_batch(images, boxes, labels, cfg.augment, gen)
    images = (images * 255).round().clamp(0, 255).to(torch.uint8)
    _, fig, axes = image_grid_axes(len(images))
    for ax, img, box, lab in zip(axes, images, boxes, labels):
        show_image(ax, img)
        for (x1, y1, x2, y2), k in zip(box.tolist(), lab.tolist()):
            # imshow puts pixel i's centre at i, so continuous coordinate x is drawn at x - 0.5
            ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor="lime", lw=1))
            ax.text(x1 - 0.5, y1 - 1, classes[k], color="lime", fontsize=6, va="bottom")
        ax.set_title(f"{len(box)} box" + ("" if len(box) == 1 else "es"), fontsize=8)
    fig.suptitle(f"{cfg.name}: {'augmented' if augment else 'raw'} training images with boxes", fontsize=10)
    return fig
