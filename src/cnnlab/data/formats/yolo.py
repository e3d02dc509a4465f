"""YOLO txt labels: ``images/{train,test}/*.jpg|png``, ``labels/{train,test}/<stem>.txt``.

Each label line is ``class cx cy w h`` (normalised to [0, 1]); classes from ``classes.txt`` (one
a line) or ``data.classes``. An image without a label file is a negative (no objects).
Registered as ``yolo`` (``data.root``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.data.annotations import (IMAGE_SUFFIXES, TEST_SPLITS, Annotation, Problems, check_class_option,
                                     dataset_root, need_dir, read_class_list, read_lines)
from cnnlab.data.registry import register_dataset
from cnnlab.errors import CnnlabError

LAYOUT = "images/{train,test}/, labels/{train,test}/, classes.txt"


def _yolo_classes(root: Path, classes: list[str] | None) -> list[str]:
    classes = check_class_option(classes)
    if classes is not None:
        return classes
    if (root / "classes.txt").is_file():
        return read_class_list(root / "classes.txt")
    raise CnnlabError(f"{root} has no classes.txt; a YOLO dataset needs its class names, one a line, "
                      "in classes.txt (or give data.classes=[name,...])")


def read_yolo(root: Path, classes: list[str] | None, problems: Problems) -> tuple[dict[str, list[Annotation]], list[str]]:
    """A YOLO folder -> ({"train": [...], "test": [...]}, classes)."""
    need_dir(root, "images/{train,test}/ and labels/{train,test}/", "YOLO")
    classes = _yolo_classes(root, classes)
    out = {}
    for split in ("train", "test"):
        names = (split,) if split == "train" else TEST_SPLITS
        image_dir = next((root / "images" / n for n in names if (root / "images" / n).is_dir()), None)
        if image_dir is None:
            raise CnnlabError(f"{root / 'images'} has no {names[0]}/ folder; a YOLO dataset keeps its images in "
                              "images/train/ and images/test/ (or images/val/)")
        label_dir = root / "labels" / image_dir.name
        images = {p.stem: p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}
        if not label_dir.is_dir():  # every image would train or be scored on zero boxes (mAP 0)
            raise CnnlabError(f"{label_dir} is not a folder; a YOLO dataset keeps one label file per image there "
                              f"(labels/{image_dir.name}/<image stem>.txt beside images/{image_dir.name}/)")
        labels = sorted(label_dir.glob("*.txt"))
        if images and not any(txt.stem in images for txt in labels):
            raise CnnlabError(f"none of the {len(images)} images in {image_dir} has a label file in {label_dir} "
                              "(<image stem>.txt); every image would have zero boxes")
        for txt in labels:
            if txt.stem not in images:
                problems.add("missing_images", f"label file {txt}",
                             f"no image {image_dir / txt.stem}.(jpg|png) for it")
        anns = []
        for stem, image in images.items():
            txt = label_dir / f"{stem}.txt"
            boxes, ids = [], []
            if txt.is_file():
                for number, line in enumerate(read_lines(txt, "label file"), start=1):
                    if not line:
                        continue
                    parts = line.split()
                    where = f"label file {txt} line {number}"
                    try:
                        values = [float(v) for v in parts]
                    except ValueError:
                        values = []
                    if len(parts) != 5 or not values or not float(values[0]).is_integer():
                        raise CnnlabError(f"{where} is {line[:60]!r}; expected 'class cx cy w h' "
                                          "(an integer class id and four numbers in [0, 1])")
                    cls = int(values[0])
                    if not 0 <= cls < len(classes):
                        problems.add("unknown_classes", where,
                                     f"class id {cls} is outside the {len(classes)} classes of the class list")
                        continue
                    cx, cy, w, h = values[1:]
                    boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
                    ids.append(cls)
            anns.append(Annotation(image, np.array(boxes, dtype=np.float64).reshape(-1, 4),
                                   np.array(ids, dtype=np.int64), str(txt), normalized=True))
        if not anns:
            raise CnnlabError(f"{image_dir} holds no images ({'/'.join(IMAGE_SUFFIXES)})")
        out[split] = anns
    return out, classes



@register_dataset("yolo", task="detect")
def load_yolo(cfg, problems: Problems):
    """``data.name=yolo``: the YOLO folder at ``data.root``."""
    root = dataset_root(cfg.root, "yolo", LAYOUT)
    return (*read_yolo(root, cfg.classes, problems), root)
