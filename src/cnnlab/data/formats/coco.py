"""COCO JSON: ``annotations/instances_{train,test}.json`` (``val`` for test).

COCO's own ``instances_train2017.json`` names work too; each ``file_name`` is looked up in
``train2017/`` (the file's suffix), ``{split}/``, ``images/{split}/``, ``images/`` and the root.
Classes are the categories sorted by id. Registered as ``coco`` (``data.root``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnlab.data.annotations import (TEST_SPLITS, Annotation, Problems, check_class_option, dataset_root, load_json,
                                     need_dir)
from cnnlab.data.registry import register_dataset
from cnnlab.errors import CnnlabError

LAYOUT = "annotations/instances_{train,test}.json"


def _coco_file(root: Path, split: str) -> Path:
    """``annotations/instances_<split>.json`` (or ``<split>.json``, or one ``instances_<split>*.json``
    such as COCO's own ``instances_train2017.json``); for the test split ``val`` is accepted too."""
    folder = root / "annotations"
    for name in ((split,) if split == "train" else TEST_SPLITS):
        for candidate in (folder / f"instances_{name}.json", folder / f"{name}.json"):
            if candidate.is_file():
                return candidate
        found = sorted(folder.glob(f"instances_{name}*.json")) if folder.is_dir() else []
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise CnnlabError(f"{folder} holds {len(found)} files matching instances_{name}*.json "
                              f"({', '.join(p.name for p in found[:3])}); keep one per split")
    wanted = "instances_train.json" if split == "train" else "instances_test.json (or instances_val.json)"
    raise CnnlabError(f"{folder} has no {wanted}; a COCO dataset folder holds annotations/instances_<split>.json")


def _field(record, key: str, kinds, where: str):
    if not isinstance(record, dict) or key not in record or not isinstance(record[key], kinds) \
            or isinstance(record[key], bool):
        raise CnnlabError(f"{where} has no valid {key!r} field; see the COCO 'instances' format")
    return record[key]


def read_coco_split(path: Path, root: Path, split: str, classes: list[str] | None,
                    problems: Problems) -> tuple[list[Annotation], list[str]]:
    """One ``instances_<split>.json`` -> (annotations, classes from its categories or ``classes``)."""
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("annotations"), list) or not isinstance(doc.get("categories"), list):
        raise CnnlabError(f"COCO file {path} needs top-level 'images', 'annotations' and 'categories' lists")
    categories = {}
    for number, cat in enumerate(doc["categories"]):
        where = f"COCO file {path} category {number}"
        categories[_field(cat, "id", int, where)] = str(_field(cat, "name", str, where))
    if classes is None:
        classes = [categories[k] for k in sorted(categories)]
    index = {name: i for i, name in enumerate(classes)}
    folders = [root / split, root / "images" / split, root / "images", root]
    if path.stem.startswith("instances_") and path.stem[len("instances_"):] != split:  # e.g. train2017/
        folders.insert(0, root / path.stem[len("instances_"):])
    images: dict[int, Annotation] = {}
    order = []
    for number, img in enumerate(doc["images"]):
        where = f"COCO file {path} image {number}"
        image_id = _field(img, "id", int, where)
        name = _field(img, "file_name", str, where)
        if image_id in images:
            raise CnnlabError(f"{where} repeats image id {image_id}; each image in 'images' needs its own id")
        parts = Path(name.replace("\\", "/")).parts
        if not name or Path(name).is_absolute() or name.startswith(("/", "\\")) or ".." in parts:
            # like a VOC id that is a path: an image must lie inside the dataset folder
            raise CnnlabError(f"{where} file_name {name[:60]!r} leaves the dataset folder; give a name relative to "
                              "its image folder, such as 000000000139.jpg")
        found = next((f / name for f in folders if (f / name).is_file()), folders[0] / name)
        size = None
        if isinstance(img.get("height"), int) and isinstance(img.get("width"), int):
            size = (img["height"], img["width"])
        images[image_id] = Annotation(found, np.zeros((0, 4)), np.zeros(0, dtype=np.int64),
                                      f"COCO file {path} image {name}", size)
        order.append(image_id)
    boxes: dict[int, list] = {k: [] for k in images}
    labels: dict[int, list] = {k: [] for k in images}
    for number, ann in enumerate(doc["annotations"]):
        where = f"COCO file {path} annotation {number}"
        image_id = _field(ann, "image_id", int, where)
        category = _field(ann, "category_id", int, where)
        bbox = _field(ann, "bbox", list, where)
        if len(bbox) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox):
            raise CnnlabError(f"{where} bbox is {str(bbox)[:60]}; expected [x, y, width, height] numbers")
        if image_id not in images:
            raise CnnlabError(f"{where} names image_id {image_id}, which is not in 'images'; fix the file")
        if ann.get("iscrowd"):
            problems.add("crowd_skipped", where, "iscrowd=1")
            continue
        name = categories.get(category)
        if name is None or name not in index:
            what = f"category_id {category}" + (f" ({name!r})" if name else " (not in 'categories')")
            problems.add("unknown_classes", where, f"{what} is not in the class list {classes[:10]}")
            continue
        x, y, w, h = (float(v) for v in bbox)
        boxes[image_id].append((x, y, x + w, y + h))
        labels[image_id].append(index[name])
    out = []
    for image_id in order:
        ann = images[image_id]
        ann.boxes = np.array(boxes[image_id], dtype=np.float64).reshape(-1, 4)
        ann.labels = np.array(labels[image_id], dtype=np.int64)
        out.append(ann)
    return out, classes


def read_coco(root: Path, classes: list[str] | None, problems: Problems) -> tuple[dict[str, list[Annotation]], list[str]]:
    """A COCO folder -> ({"train": [...], "test": [...]}, classes); both splits must share categories."""
    need_dir(root, "annotations/instances_{train,test}.json", "COCO")
    classes = check_class_option(classes)
    train, train_classes = read_coco_split(_coco_file(root, "train"), root, "train", classes, problems)
    test, test_classes = read_coco_split(_coco_file(root, "test"), root, "test", train_classes, problems)
    return {"train": train, "test": test}, train_classes



@register_dataset("coco", task="detect")
def load_coco(cfg, problems: Problems):
    """``data.name=coco``: the COCO folder at ``data.root``."""
    root = dataset_root(cfg.root, "coco", LAYOUT)
    return (*read_coco(root, cfg.classes, problems), root)
