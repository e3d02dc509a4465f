"""Readers for images with boxes: Pascal VOC XML folders, COCO JSON and YOLO txt labels.

Every reader returns, per split, a list of :class:`Annotation` (an image file plus its
boxes and class ids) and the class list. Images are not decoded here; the boxes are
checked against each image's real size once it is decoded (:func:`check_boxes`).

Box convention everywhere in cnnlab: ``x1, y1, x2, y2`` in continuous pixel coordinates,
where pixel ``i`` covers ``[i, i + 1)``. A box that covers pixel columns 3..7 has
``x1 = 3, x2 = 8``. COCO's ``[x, y, w, h]`` is already in these coordinates; VOC's
1-based inclusive ``xmin..xmax`` becomes ``x1 = xmin - 1, x2 = xmax``; YOLO's normalised
centre and size are multiplied by the image's width and height.

>>> voc_box(81, 88, 522, 408)   # raccoon-1.xml's box, pixels 80..521 x 87..407
(80.0, 87.0, 522.0, 408.0)

Layouts under a root folder:

- VOC:  ``Annotations/<id>.xml``, ``JPEGImages/<file>``, ``ImageSets/Main/{train,test}.txt``
  (``val.txt`` is accepted for the test split); classes from ``data.classes``, else
  ``classes.txt``, else the sorted names found in the annotations.
- COCO: ``annotations/instances_{train,test}.json`` (``val`` for test; COCO's own
  ``instances_train2017.json`` names work too); each ``file_name`` is looked up in ``train2017/``
  (the file's suffix), ``{split}/``, ``images/{split}/``, ``images/`` and the root. Classes are the
  categories sorted by id.
- YOLO: ``images/{train,test}/*.jpg|png``, ``labels/{train,test}/<stem>.txt`` with lines
  ``class cx cy w h`` (normalised to [0, 1]), classes from ``classes.txt`` (one a line) or
  ``data.classes``. An image without a label file is a negative (no objects).

Bad input: broken files (bad XML or JSON, a malformed line, a missing split file) are
one-line :class:`~cnnlab.errors.CnnlabError`. Problems with single boxes or images (an
annotation naming a missing image, a box outside its image or with ``x2 <= x1``, a class
not in the class list) are counted and reported once as a warning, or are errors with
``data.strict=true`` (:class:`Problems`). An image with no boxes is a valid negative.
"""

from __future__ import annotations

import json
import math
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MAX_ANNOTATION_BYTES = 512 * 2**20  # a COCO file of the full 2017 train set is ~450 MB
TEST_SPLITS = ("test", "val")


@dataclass
class Annotation:
    """One image and its objects, as read from disk (boxes not yet checked against the image)."""

    image: Path
    boxes: np.ndarray  # float64 (K, 4): x1, y1, x2, y2 in pixels, or in [0, 1] when ``normalized``
    labels: np.ndarray  # int64 (K,): class ids
    source: str  # the annotation file (and object) for messages
    size: tuple[int, int] | None = None  # (height, width) the annotation declares, if any
    normalized: bool = False  # YOLO: boxes are fractions of the image's width and height


# Problem kinds: what the count is called and how the warning describes it.
PROBLEMS = {
    "missing_images": "annotations naming a missing image (image skipped)",
    "unreadable_images": "unreadable images (skipped)",
    "boxes_clipped": "boxes reaching outside their image (clipped to it)",
    "boxes_outside": "boxes entirely outside their image (dropped)",
    "boxes_invalid": "boxes with x2 <= x1 or y2 <= y1 or non-finite coordinates (dropped)",
    "unknown_classes": "objects whose class is not in the class list (dropped)",
    "size_mismatches": "annotations whose declared image size differs from the real image (boxes kept)",
    "crowd_skipped": "COCO crowd regions (iscrowd=1, skipped as COCO evaluation ignores them)",
}


@dataclass
class Problems:
    """Counts of bad boxes and annotations; the first example of each kind is kept for the warning.

    With ``strict`` the first problem is a one-line error instead.

    >>> p = Problems(strict=False)
    >>> p.add("boxes_clipped", "a.xml object 1", "x2=700 > width 650")
    >>> p.counts["boxes_clipped"]
    1
    """

    strict: bool
    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, where: str, detail: str) -> None:
        if self.strict:
            raise CnnlabError(f"{where}: {detail} ({PROBLEMS[kind].split(' (')[0]}); fix the annotation, "
                              "or set data.strict=false to skip or clip it with a count")
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.first.setdefault(kind, f"{where}: {detail}")

    def warn(self, name: str) -> None:
        """One warning line per kind of problem seen, with its count and first example."""
        for kind, count in self.counts.items():
            print(f"cnnlab: warning: {name}: {count} {PROBLEMS[kind]}; first: {self.first[kind]}", file=sys.stderr)


def voc_box(xmin: float, ymin: float, xmax: float, ymax: float) -> tuple[float, float, float, float]:
    """VOC's 1-based inclusive pixel box -> continuous ``x1, y1, x2, y2``."""
    return float(xmin) - 1.0, float(ymin) - 1.0, float(xmax), float(ymax)


# ----------------------------------------------------------------------------- small file helpers


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_ANNOTATION_BYTES:
            raise CnnlabError(f"{what} {path} is {size / 2**20:.0f} MiB, over the {MAX_ANNOTATION_BYTES >> 20} MiB "
                              "limit for an annotation file")
        return path.read_bytes()
    except OSError as exc:
        raise CnnlabError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _read_lines(path: Path, what: str) -> list[str]:
    data = _read_bytes(path, what)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CnnlabError(f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    return [line.strip() for line in text.splitlines()]


def read_class_list(path: Path) -> list[str]:
    """Class names, one a line (blank lines ignored); duplicates are an error."""
    names = [line for line in _read_lines(path, "class list") if line]
    if not names:
        raise CnnlabError(f"class list {path} is empty; write one class name a line")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CnnlabError(f"class list {path} names {dup[0]!r} twice; each class once")
    return names


def check_class_option(classes: list[str] | None) -> list[str] | None:
    if classes is None:
        return None
    if not classes or len(set(classes)) != len(classes) or any(not c.strip() for c in classes):
        raise CnnlabError(f"data.classes must be a list of distinct non-empty names, got {classes!r}")
    return list(classes)


def _need_dir(path: Path, what: str, layout: str) -> Path:
    if not path.is_dir():
        raise CnnlabError(f"{path} does not exist or is not a folder; a {layout} dataset needs {what}")
    return path


# ----------------------------------------------------------------------------- Pascal VOC


def parse_xml(path: Path) -> ET.Element:
    """Parse an annotation XML file, refusing DTDs and entities.

    ElementTree's expat parser does not fetch external entities, and refusing
    any ``<!DOCTYPE``/``<!ENTITY`` up front also rules out entity-expansion
    bombs ("billion laughs"), so the stdlib parser is safe on these files
    without defusedxml.
    """
    data = _read_bytes(path, "annotation")
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
    _need_dir(root, "Annotations/, JPEGImages/ and ImageSets/Main/", "VOC")
    ann_dir = _need_dir(root / "Annotations", "Annotations/<id>.xml", "VOC")
    image_dir = _need_dir(root / "JPEGImages", "JPEGImages/<image>", "VOC")
    classes = check_class_option(classes)
    if classes is None and (root / "classes.txt").is_file():
        classes = read_class_list(root / "classes.txt")
    raw: dict[str, list[tuple[Annotation, list[str]]]] = {}
    for split in ("train", "test"):
        listing = _split_file(root, split)
        ids = [line.split()[0] for line in _read_lines(listing, "split file") if line]
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


# ----------------------------------------------------------------------------- COCO


def load_json(path: Path, what: str = "COCO file"):
    """``json.loads`` of a file whose every failure is one line naming the place."""
    data = _read_bytes(path, what)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise CnnlabError(f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
                          "fix or re-export the file") from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise CnnlabError(f"{what} {path} cannot be read as JSON: {str(exc)[:120]}") from None


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
    _need_dir(root, "annotations/instances_{train,test}.json", "COCO")
    classes = check_class_option(classes)
    train, train_classes = read_coco_split(_coco_file(root, "train"), root, "train", classes, problems)
    test, test_classes = read_coco_split(_coco_file(root, "test"), root, "test", train_classes, problems)
    return {"train": train, "test": test}, train_classes


# ----------------------------------------------------------------------------- YOLO


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
    _need_dir(root, "images/{train,test}/ and labels/{train,test}/", "YOLO")
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
                for number, line in enumerate(_read_lines(txt, "label file"), start=1):
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


# ----------------------------------------------------------------------------- checks against the image


def check_boxes(ann: Annotation, height: int, width: int, problems: Problems) -> tuple[np.ndarray, np.ndarray]:
    """The annotation's boxes in pixels of the real ``height`` x ``width`` image, checked.

    A box with ``x2 <= x1``, ``y2 <= y1`` or a non-finite coordinate is dropped, one
    entirely outside the image is dropped, one reaching outside is clipped -- each
    counted in ``problems`` (or an error when strict). Returns float64 (K, 4), int64 (K,).

    >>> ann = Annotation(Path("a.jpg"), np.array([[-5., 0., 10., 10.]]), np.array([0]), "a.xml")
    >>> p = Problems(strict=False)
    >>> check_boxes(ann, 20, 20, p)[0].tolist(), p.counts
    ([[0.0, 0.0, 10.0, 10.0]], {'boxes_clipped': 1})
    """
    boxes = ann.boxes.astype(np.float64).copy()
    if ann.normalized:
        boxes *= np.array([width, height, width, height], dtype=np.float64)
    if ann.size is not None and tuple(ann.size) != (height, width):
        problems.add("size_mismatches", ann.source,
                     f"declares {ann.size[1]}x{ann.size[0]} but the image {ann.image.name} is {width}x{height}")
    keep = []
    for number, box in enumerate(boxes):
        x1, y1, x2, y2 = box
        where = f"{ann.source} box {number + 1}"
        if not all(math.isfinite(v) for v in box) or x2 <= x1 or y2 <= y1:
            problems.add("boxes_invalid", where, f"box {[round(float(v), 2) for v in box]} has no area")
            continue
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            problems.add("boxes_outside", where, f"box {[round(float(v), 2) for v in box]} lies outside the "
                                                 f"{width}x{height} image")
            continue
        if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
            problems.add("boxes_clipped", where, f"box {[round(float(v), 2) for v in box]} reaches outside the "
                                                 f"{width}x{height} image")
            boxes[number] = (max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height)))
        keep.append(number)
    return boxes[keep].reshape(-1, 4), ann.labels[keep]
