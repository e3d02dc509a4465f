"""Tiny synthetic detection scenes for the tests: filled (class 0) and hollow (class 1) squares.

A stand-in for :class:`cnnlab.data.detection.DetectionData` with the same fields, so the
detector, its loss and its training can be tested without any reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class FakeDetectionData:
    images: torch.Tensor  # uint8 (N, C, S, S)
    boxes: list  # per image float32 (K_i, 4)
    labels: list  # per image int64 (K_i,)
    scale: torch.Tensor = None
    pad: torch.Tensor = None
    orig_size: torch.Tensor = None
    paths: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device):
        return self


def squares(n: int, size: int = 64, seed: int = 0, max_objects: int = 2, channels: int = 1) -> FakeDetectionData:
    """``n`` scenes of ``size`` x ``size`` with 1..max_objects non-overlapping squares of side 12-24."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, channels, size, size, dtype=torch.uint8)
    boxes, labels = [], []
    for i in range(n):
        k = int(torch.randint(1, max_objects + 1, (1,), generator=g))
        bs, ls = [], []
        for _ in range(50):
            if len(bs) == k:
                break
            side = int(torch.randint(12, 25, (1,), generator=g))
            x1 = int(torch.randint(0, size - side + 1, (1,), generator=g))
            y1 = int(torch.randint(0, size - side + 1, (1,), generator=g))
            box = [x1, y1, x1 + side, y1 + side]
            if any(not (box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1]) for b in bs):
                continue
            cls = int(torch.randint(0, 2, (1,), generator=g))
            images[i, :, y1:y1 + side, x1:x1 + side] = 255
            if cls == 1:  # hollow: a 3-pixel frame
                images[i, :, y1 + 3:y1 + side - 3, x1 + 3:x1 + side - 3] = 0
            bs.append(box)
            ls.append(cls)
        boxes.append(torch.tensor(bs, dtype=torch.float32).reshape(-1, 4))
        labels.append(torch.tensor(ls, dtype=torch.long))
    return FakeDetectionData(images, boxes, labels, torch.ones(n), torch.zeros(n, 2),
                             torch.full((n, 2), size, dtype=torch.long), [f"scene{i}" for i in range(n)])
