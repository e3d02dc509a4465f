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
            x1 = int(torch.randint(1, size - side, (1,), generator=g))  # one pixel clear of the border
            y1 = int(torch.randint(1, size - side, (1,), generator=g))
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


CLASSES = ["filled", "hollow"]


def write_voc(root, data: FakeDetectionData, split: str, start: int = 0) -> list[str]:
    """Write scenes as a Pascal VOC folder (PNG images): the real on-disk format the data layer reads."""
    from pathlib import Path

    from PIL import Image

    root = Path(root)
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(len(data)):
        image_id = f"{split}{start + i:04d}"
        img = data.images[i]
        h, w = img.shape[1:]
        Image.fromarray(img[0].numpy()).save(root / "JPEGImages" / f"{image_id}.png")
        objects = "".join(
            f"<object><name>{CLASSES[int(c)]}</name><bndbox><xmin>{int(b[0])}</xmin><ymin>{int(b[1])}</ymin>"
            f"<xmax>{int(b[2])}</xmax><ymax>{int(b[3])}</ymax></bndbox></object>"
            for b, c in zip(data.boxes[i], data.labels[i]))
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.png</filename><size><width>{w}</width><height>{h}</height>"
            f"<depth>1</depth></size>{objects}</annotation>")
        ids.append(image_id)
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    old = listing.read_text().split() if listing.exists() else []
    listing.write_text("\n".join(old + ids) + "\n")
    return ids
