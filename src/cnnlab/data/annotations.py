"""What every detection format shares: :class:`Annotation`, the problem counts, the box checks.

Every reader (:mod:`cnnlab.data.formats`) returns, per split, a list of :class:`Annotation` (an
image file plus its boxes and class ids) and the class list. Images are not decoded there; the
boxes are checked against each image's real size once it is decoded (:func:`check_boxes`).

Box convention everywhere in cnnlab: ``x1, y1, x2, y2`` in continuous pixel coordinates,
where pixel ``i`` covers ``[i, i + 1)``. A box that covers pixel columns 3..7 has
``x1 = 3, x2 = 8``. COCO's ``[x, y, w, h]`` is already in these coordinates; VOC's
1-based inclusive ``xmin..xmax`` becomes ``x1 = xmin - 1, x2 = xmax``; YOLO's normalised
centre and size are multiplied by the image's width and height.

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


# ----------------------------------------------------------------------------- small file helpers


def read_bytes(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_ANNOTATION_BYTES:
            raise CnnlabError(f"{what} {path} is {size / 2**20:.0f} MiB, over the {MAX_ANNOTATION_BYTES >> 20} MiB "
                              "limit for an annotation file")
        return path.read_bytes()
    except OSError as exc:
        raise CnnlabError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def read_lines(path: Path, what: str) -> list[str]:
    data = read_bytes(path, what)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CnnlabError(f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    return [line.strip() for line in text.splitlines()]


def read_class_list(path: Path) -> list[str]:
    """Class names, one a line (blank lines ignored); duplicates are an error."""
    names = [line for line in read_lines(path, "class list") if line]
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


def need_dir(path: Path, what: str, layout: str) -> Path:
    if not path.is_dir():
        raise CnnlabError(f"{path} does not exist or is not a folder; a {layout} dataset needs {what}")
    return path


def dataset_root(root: str | None, name: str, layout: str) -> Path:
    """``data.root`` as a path; unset, a one-line error naming the folder ``layout`` that ``name`` reads."""
    if not root:
        raise CnnlabError(f"data.name={name} needs data.root=PATH, the dataset folder ({layout})")
    return Path(root)


def load_json(path: Path, what: str = "COCO file"):
    """``json.loads`` of a file whose every failure is one line naming the place."""
    data = read_bytes(path, what)
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise CnnlabError(f"{what} {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
                          "fix or re-export the file") from None
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise CnnlabError(f"{what} {path} cannot be read as JSON: {str(exc)[:120]}") from None



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
