"""Pascal VOC folders: ``Annotations/<id>.xml``, ``JPEGImages/<file>``, ``ImageSets/Main/{train,test}.txt``.

``val.txt`` is accepted for the test split; classes from ``data.classes``, else ``classes.txt``,
else the sorted names found in the annotations. Registered as ``voc`` (any folder, ``data.root``)
and ``raccoon`` (the Raccoon set, searched for like the other standard datasets).

>>> voc_box(81, 88, 522, 408)   # raccoon-1.xml's box, pixels 80..521 x 87..407
(80.0, 87.0, 522.0, 408.0)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from cnnlab.data.annotations import (IMAGE_SUFFIXES, TEST_SPLITS, Annotation, Problems, check_class_option,
                                     dataset_root, need_dir, read_bytes, read_class_list, read_lines)
from cnnlab.data.locate import find_dataset_dir
from cnnlab.data.registry import register_dataset
from cnnlab.errors import CnnlabError

LAYOUT = "Annotations/, JPEGImages/, ImageSets/Main/"


def voc_box(xmin: float, ymin: float, xmax: float, ymax: float) -> tuple[float, float, float, float]:
    """VOC's 1-based inclusive pixel box -> continuous ``x1, y1, x2, y2``."""
    return float(xmin) - 1.0, float(ymin) - 1.0, float(xmax), float(ymax)


def parse_xml(path: Path) -> ET.Element:
    """Parse an annotation XML file, refusing DTDs and entities.

    ElementTree's expat parser does not fetch external entities, and refusing
    any ``<!DOCTYPE``/``<!ENTITY`` up front also rules out entity-expansion
    bombs ("billion laughs"), so the stdlib parser is safe on these files
    without defusedxml.
    """
    data = read_bytes(path, "annotation")
    upper = data.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise CnnlabError(f"annotation {path} declares a DTD or entities; VOC annotations have none, "
                          "so cnnlab refuses it (remove the <!DOCTYPE> part)")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise CnnlabError(f"annotation {path} is not valid XML: {exc}; fix or remove the file") from None


def _number(node: ET.Element | None, tag: str, where: str) -> float:
    child = node.find(tag) if node is not None else None
    if child is None or child.text is None:
        raise CnnlabError(f"{where} has no <{tag}>; a VOC <bndbox> holds xmin, ymin, xmax and ymax")
    try:
        return float(child.text.strip())
    except ValueError:
        raise CnnlabError(f"{where} <{tag}> is {child.text.strip()[:40]!r}, not a number") from None


def read_voc_annotation(xml_path: Path, image_dir: Path, image_id: str) -> tuple[Annotation, list[str]]:
    """One VOC XML file -> (Annotation with labels left at -1, the class names of its objects)."""
    root = parse_xml(xml_path)
    if root.tag != "annotation":
        raise CnnlabError(f"annotation {xml_path} has root <{root.tag}>; a VOC file has <annotation>")
    filename = (root.findtext("filename") or "").strip()
    if filename and Path(filename).name == filename:
        image = image_dir / filename
    else:  # no <filename>, or one with folders in it: look for <id>.<suffix>
        image = next((image_dir / f"{image_id}{s}" for s in IMAGE_SUFFIXES if (image_dir / f"{image_id}{s}").is_file()),
                     image_dir / f"{image_id}.jpg")
    size = None
    size_node = root.find("size")
    if size_node is not None and size_node.findtext("width") and size_node.findtext("height"):
        try:
            size = (int(float(size_node.findtext("height"))), int(float(size_node.findtext("width"))))
        except ValueError:
            raise CnnlabError(f"annotation {xml_path} <size> holds a non-number; fix or remove <size>") from None
    boxes, names = [], []
    for number, obj in enumerate(root.findall("object"), start=1):
        where = f"annotation {xml_path} object {number}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise CnnlabError(f"{where} has no <name>; every VOC object names its class")
        box = obj.find("bndbox")
        if box is None:
            raise CnnlabError(f"{where} has no <bndbox>")
        boxes.append(voc_box(*(_number(box, t, where) for t in ("xmin", "ymin", "xmax", "ymax"))))
        names.append(name)
    ann = Annotation(image, np.array(boxes, dtype=np.float64).reshape(-1, 4),
                     np.full(len(names), -1, dtype=np.int64), str(xml_path), size)
    return ann, names


def _split_file(root: Path, split: str) -> Path:
    main = root / "ImageSets" / "Main"
    for name in ((split,) if split == "train" else TEST_SPLITS):
        if (main / f"{name}.txt").is_file():
            return main / f"{name}.txt"
    wanted = "train.txt" if split == "train" else "test.txt (or val.txt)"
    raise CnnlabError(f"{main} has no {wanted}; a VOC folder lists each split's image ids there, one a line")


def read_voc(root: Path, classes: list[str] | None, problems: Problems) -> tuple[dict[str, list[Annotation]], list[str]]:
    """A VOC folder -> ({"train": [...], "test": [...]}, classes)."""
    need_dir(root, "Annotations/, JPEGImages/ and ImageSets/Main/", "VOC")
    ann_dir = need_dir(root / "Annotations", "Annotations/<id>.xml", "VOC")
    image_dir = need_dir(root / "JPEGImages", "JPEGImages/<image>", "VOC")
    classes = check_class_option(classes)
    if classes is None and (root / "classes.txt").is_file():
        classes = read_class_list(root / "classes.txt")
    raw: dict[str, list[tuple[Annotation, list[str]]]] = {}
    for split in ("train", "test"):
        listing = _split_file(root, split)
        ids = [line.split()[0] for line in read_lines(listing, "split file") if line]
        if not ids:
            raise CnnlabError(f"split file {listing} lists no image ids; write one id a line")
        items = []
        for image_id in ids:
            if "/" in image_id or "\\" in image_id or image_id in (".", ".."):
                raise CnnlabError(f"{listing} lists {image_id[:60]!r}, which is a path, not an image id; "
                                  "write bare ids such as 2008_000123 (the XML is Annotations/<id>.xml)")
            xml_path = ann_dir / f"{image_id}.xml"
            if not xml_path.is_file():
                raise CnnlabError(f"{listing} names image id {image_id!r} but {xml_path} does not exist; "
                                  "add the annotation or remove the id")
            items.append(read_voc_annotation(xml_path, image_dir, image_id))
        raw[split] = items
    if classes is None:
        classes = sorted({n for items in raw.values() for _, names in items for n in names})
    index = {name: i for i, name in enumerate(classes)}
    out: dict[str, list[Annotation]] = {}
    for split, items in raw.items():
        out[split] = []
        for ann, names in items:
            keep = []
            for number, name in enumerate(names):
                if name in index:
                    ann.labels[number] = index[name]
                    keep.append(number)
                else:
                    problems.add("unknown_classes", f"{ann.source} object {number + 1}",
                                 f"class {name!r} is not in the class list {classes[:10]}")
            ann.boxes, ann.labels = ann.boxes[keep], ann.labels[keep]
            out[split].append(ann)
    return out, classes




@register_dataset("voc", task="detect")
def load_voc(cfg, problems: Problems):
    """``data.name=voc``: the VOC folder at ``data.root``."""
    root = dataset_root(cfg.root, "voc", LAYOUT)
    return (*read_voc(root, cfg.classes, problems), root)


@register_dataset("raccoon", task="detect", classes=("raccoon",))
def load_raccoon(cfg, problems: Problems):
    """``data.name=raccoon``: the Raccoon set (VOC layout), found under the data roots."""
    root = find_dataset_dir("raccoon", cfg.data_dir, download=False)
    return (*read_voc(root, cfg.classes or ["raccoon"], problems), root)
