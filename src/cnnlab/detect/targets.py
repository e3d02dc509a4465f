"""Target assignment: which grid points learn which ground-truth box.

A point (cell centre ``(cx, cy)`` on a level of stride ``s``) is a *positive* for a box
when all of these hold (FCOS's level ranges plus YOLOX/FCOS centre sampling):

1. **the box belongs to the point's level**: the box's longer side lies in the level's range
   ``(lo, hi]`` (default: level i takes sides up to ``8 * stride_i``, the last level the rest),
   so each box is learnt on exactly one level;
2. **the point is near the box centre**: either the point lies strictly inside the box *and*
   within ``radius * s`` of the box centre along both axes, or the point's cell contains the
   box centre (so even a box smaller than a cell gets one positive).

A point that two boxes claim takes the smaller box (its area is smaller), the usual FCOS rule:
the large box has other points left, the small one may not. Every other point is a negative
(objectness 0). docs/detection.md works one example by hand; tests/detect/test_targets.py checks it.

>>> pts = torch.tensor([[8., 8.], [24., 8.], [8., 24.], [24., 24.]])   # a 2x2 grid, stride 16
>>> strides = torch.full((4,), 16.)
>>> ranges = torch.tensor([[0., float("inf")]]).expand(4, 2)
>>> assign(pts, strides, ranges, torch.tensor([[[2., 2., 20., 14.]]]), torch.tensor([[True]]), 1.5)
tensor([[ 0, -1, -1, -1]])
"""

from __future__ import annotations

from typing import Sequence

import torch

from cnnlab.errors import CnnlabError


def level_ranges(strides: Sequence[int], point_strides: torch.Tensor,
                 size_ranges: Sequence[float] | None = None) -> torch.Tensor:
    """(A, 2) the (lo, hi] range of box sizes (longer side, pixels) each point's level takes.

    ``size_ranges`` are the boundaries between consecutive levels (one fewer than the
    strides); by default ``8 * stride`` of each level but the last (FCOS: 64, 128, ...).

    >>> level_ranges([8, 16], torch.tensor([8., 8., 16.])).tolist()
    [[0.0, 64.0], [0.0, 64.0], [64.0, inf]]
    """
    strides = list(strides)
    bounds = list(size_ranges) if size_ranges is not None else [8.0 * s for s in strides[:-1]]
    if len(bounds) != len(strides) - 1:
        raise CnnlabError(f"detect.size_ranges has {len(bounds)} values; {len(strides)} strides need "
                          f"{len(strides) - 1} boundaries (or null for 8 x stride)")
    edges = [0.0] + [float(b) for b in bounds] + [float("inf")]
    out = torch.empty(len(point_strides), 2)
    for i, s in enumerate(strides):
        mask = point_strides == float(s)
        out[mask, 0], out[mask, 1] = edges[i], edges[i + 1]
    return out


def assign(points: torch.Tensor, point_strides: torch.Tensor, ranges: torch.Tensor,
           boxes: torch.Tensor, valid: torch.Tensor, radius: float) -> torch.Tensor:
    """The ground-truth index each point learns, -1 for background: (B, A) int64.

    ``points`` (A, 2) cell centres (x, y); ``point_strides`` (A,); ``ranges`` (A, 2) from
    :func:`level_ranges`; ``boxes`` (B, K, 4) x1, y1, x2, y2 padded to the most boxes in the
    batch, ``valid`` (B, K) which of them are real; ``radius`` in strides.
    """
    B, K = valid.shape
    A = len(points)
    if K == 0:
        return torch.full((B, A), -1, dtype=torch.long, device=points.device)
    cx = points[:, 0].view(1, A, 1)
    cy = points[:, 1].view(1, A, 1)
    s = point_strides.view(1, A, 1)
    x1, y1, x2, y2 = (boxes[..., i].unsqueeze(1) for i in range(4))  # each (B, 1, K)
    gcx, gcy = (x1 + x2) / 2, (y1 + y2) / 2
    inside = (cx > x1) & (cx < x2) & (cy > y1) & (cy < y2)  # (B, A, K)
    near = ((cx - gcx).abs() < radius * s) & ((cy - gcy).abs() < radius * s)
    # the cell [cx - s/2, cx + s/2) x [cy - s/2, cy + s/2) holds the box centre
    holds_centre = (gcx >= cx - s / 2) & (gcx < cx + s / 2) & (gcy >= cy - s / 2) & (gcy < cy + s / 2)
    side = torch.maximum(x2 - x1, y2 - y1)  # (B, 1, K)
    fits = (side > ranges[:, 0].view(1, A, 1)) & (side <= ranges[:, 1].view(1, A, 1))
    positive = fits & ((inside & near) | holds_centre) & valid.unsqueeze(1)
    area = ((x2 - x1) * (y2 - y1)).expand(B, A, K)
    area = torch.where(positive, area, torch.full_like(area, float("inf")))
    best_area, best = area.min(dim=2)  # ties: the first (lowest-index) box
    return torch.where(torch.isfinite(best_area), best, torch.full_like(best, -1))


def pad_targets(boxes: list[torch.Tensor], labels: list[torch.Tensor],
                device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image lists -> (B, K, 4) boxes, (B, K) labels and (B, K) valid mask, K the most boxes in one image."""
    device = device or (boxes[0].device if boxes else torch.device("cpu"))
    k = max((len(b) for b in boxes), default=0)
    out_boxes = torch.zeros(len(boxes), k, 4, device=device)
    out_labels = torch.zeros(len(boxes), k, dtype=torch.long, device=device)
    valid = torch.zeros(len(boxes), k, dtype=torch.bool, device=device)
    for i, (b, lab) in enumerate(zip(boxes, labels)):
        n = len(b)
        out_boxes[i, :n] = b.to(device=device, dtype=torch.float32)
        out_labels[i, :n] = lab.to(device)
        valid[i, :n] = True
    return out_boxes, out_labels, valid
