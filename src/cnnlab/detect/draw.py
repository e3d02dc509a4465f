"""Pictures of detections: boxes with labels and scores drawn on images (torchvision's drawing).

>>> img = torch.zeros(1, 32, 32, dtype=torch.uint8)
>>> out = draw_boxes(img, torch.tensor([[4., 4., 20., 20.]]), ["7 0.98"], colors=["lime"])
>>> out.shape, out.dtype
(torch.Size([3, 32, 32]), torch.uint8)
"""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.fileio import atomic_path

PRED_COLOR = "lime"
TRUE_COLOR = "magenta"


def draw_boxes(image: torch.Tensor, boxes: torch.Tensor, labels: list[str], colors, width: int = 2) -> torch.Tensor:
    """uint8 (C, H, W) image (1 or 3 channels) + (K, 4) boxes -> uint8 (3, H, W) with the boxes drawn."""
    from torchvision.utils import draw_bounding_boxes

    img = image.cpu()
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    if len(boxes) == 0:
        return img.clone()
    return draw_bounding_boxes(img, boxes.detach().cpu().float(), labels=labels, colors=colors, width=width)


def detection_labels(det: dict, classes: list[str]) -> list[str]:
    return [f"{classes[int(c)]} {float(s):.2f}" for c, s in zip(det["labels"], det["scores"])]


def save_png(image: torch.Tensor, path) -> Path:
    """uint8 (3, H, W) -> PNG written atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(image.permute(1, 2, 0).contiguous().numpy()).save(tmp, format="PNG")
    return Path(path)


def detection_grid(images: torch.Tensor, preds: list[dict], targets: list[dict], classes: list[str], path,
                   min_score: float = 0.3, cols: int = 4, scale: int = 1) -> Path:
    """A grid of images with true boxes (magenta, class name) and predictions (green, name and score).

    ``images`` uint8 (N, C, S, S); predictions below ``min_score`` are not drawn. ``scale``
    enlarges small images (nearest) so the labels stay readable.
    """
    from torchvision.utils import make_grid

    tiles = []
    for img, det, tgt in zip(images, preds, targets):
        img = img.cpu()
        if scale > 1:
            img = img.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
        keep = det["scores"] >= min_score
        shown = {k: v[keep] for k, v in det.items()}
        true_boxes = tgt["boxes"].cpu() * scale
        out = draw_boxes(img, true_boxes, [classes[int(c)] for c in tgt["labels"]], TRUE_COLOR, width=1)
        out = draw_boxes(out, shown["boxes"] * scale, detection_labels(shown, classes), PRED_COLOR, width=2)
        tiles.append(out)
    grid = make_grid(torch.stack(tiles), nrow=cols, padding=4, pad_value=255)
    return save_png(grid, path)
