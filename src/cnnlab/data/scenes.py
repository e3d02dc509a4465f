"""Multi-digit MNIST scenes for detection, generated deterministically from the real MNIST digits.

Each scene is a black ``size`` x ``size`` greyscale image holding ``digits`` MNIST digits
(``"1-6"``: one to six), each rescaled by a factor drawn uniformly in [0.5, 2] (14 to 56
pixels for a 28-pixel digit) and placed where its box overlaps no earlier box by more than
:data:`MAX_OVERLAP` of the smaller box's area. Digits are combined with a pixel-wise
maximum, so an overlapped stroke stays visible. The box of a digit is the tight bounding box
of its nonzero pixels after rescaling; its class is the digit. With ``clutter``, one to three
fragments of other digits (an 8-14 pixel window cut from a random digit) are added where
they touch no box: unlabelled distractors.

Training scenes draw only MNIST training digits, test scenes only MNIST test digits (the
``t10k`` files), so no test digit is ever seen in training. The train and test scenes use
independent random streams spawned from ``seed``: the same parameters give byte-identical
files on every machine.

The scenes are written in the VOC layout (``Annotations/``, ``JPEGImages/*.png``,
``ImageSets/Main/{train,test}.txt``, ``classes.txt``) or the COCO layout
(``annotations/instances_{train,test}.json``, ``train/``, ``test/``), plus ``scenes.json``:
the generation parameters and, per object, which MNIST digit (split and index) it is, its
scale and where its 28x28 source was pasted -- so a test can re-render every object.

>>> params = SceneParams(size=64, digits=(1, 3), train=2, test=1, seed=0)
>>> params.key()[:12]  # the cache key of these parameters
'74be014c9622'
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cnnlab.data import folder as folders
from cnnlab.data.annotations import Problems
from cnnlab.data.formats.coco import read_coco
from cnnlab.data.formats.voc import read_voc
from cnnlab.data.locate import load_idx_dataset
from cnnlab.data.registry import register_dataset
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_staged_bytes, write_staged_text

GENERATOR_VERSION = 1  # bump when the drawing changes, so cached scenes are regenerated
SCALE_RANGE = (0.5, 2.0)
MAX_OVERLAP = 0.2  # intersection / smaller box area allowed between two digits
ATTEMPTS = 50  # placements tried per digit before the scene keeps fewer digits
MAX_DIGITS = 32
CLASSES = tuple(str(d) for d in range(10))  # a scene's class is its digit


def parse_digits(text: str) -> tuple[int, int]:
    """``"3"`` -> (3, 3); ``"1-6"`` -> (1, 6); anything else is a one-line error.

    >>> parse_digits("1-6"), parse_digits("4")
    ((1, 6), (4, 4))
    """
    parts = str(text).strip().split("-")
    try:
        low, high = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, -1)
    except ValueError:
        low, high = 0, -1
    if not 1 <= low <= high <= MAX_DIGITS:
        raise CnnlabError(f"digits per scene {text!r} is not valid; give N or MIN-MAX with "
                          f"1 <= MIN <= MAX <= {MAX_DIGITS}, e.g. 1-6")
    return low, high


@dataclass(frozen=True)
class SceneParams:
    size: int = 128
    digits: tuple[int, int] = (1, 6)
    train: int = 6000
    test: int = 1000
    seed: int = 0
    clutter: bool = False
    format: str = "voc"

    def check(self) -> "SceneParams":
        if not 16 <= self.size <= 4096:
            raise CnnlabError(f"scene size {self.size} is out of range; give 16 to 4096 pixels (e.g. 128)")
        for split in ("train", "test"):
            count = getattr(self, split)
            if not 1 <= count <= 10**7:
                raise CnnlabError(f"--{split} {count} is out of range; give 1 to 10,000,000 scenes")
        if not 0 <= self.seed < 2**32:
            raise CnnlabError(f"--seed {self.seed} is out of range; give 0 to 2**32-1")
        if self.format not in ("voc", "coco"):
            raise CnnlabError(f"--format {self.format!r} is not valid; give voc or coco")
        parse_digits(f"{self.digits[0]}-{self.digits[1]}")
        if self.size < int(28 * SCALE_RANGE[1]):
            raise CnnlabError(f"scene size {self.size} is smaller than the largest digit "
                              f"({int(28 * SCALE_RANGE[1])} pixels); give --size 56 or more")
        return self

    def key(self) -> str:
        """A hash of everything that changes the files: the cache folder's name."""
        text = json.dumps({**asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]


def params_from_config(cfg) -> SceneParams:
    """The :class:`SceneParams` of a ``data.scenes`` config section."""
    s = cfg.scenes
    return SceneParams(size=s.size, digits=parse_digits(s.digits), train=s.train, test=s.test, seed=s.seed,
                       clutter=s.clutter, format=s.format).check()


# ----------------------------------------------------------------------------- drawing


def _resize(digit: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(digit).resize((side, side), Image.BILINEAR), dtype=np.uint8)


def _overlap(box, others) -> float:
    """Largest intersection / smaller area between ``box`` and any of ``others``."""
    worst = 0.0
    x1, y1, x2, y2 = box
    for a1, b1, a2, b2 in others:
        iw, ih = min(x2, a2) - max(x1, a1), min(y2, b2) - max(y1, b1)
        if iw > 0 and ih > 0:
            smaller = min((x2 - x1) * (y2 - y1), (a2 - a1) * (b2 - b1))
            worst = max(worst, iw * ih / smaller)
    return worst


def draw_scene(rng: np.random.Generator, pool: np.ndarray, pool_labels: np.ndarray, params: SceneParams):
    """One scene: (uint8 (size, size) image, list of objects).

    Each object is ``{"box": [x1, y1, x2, y2], "label": digit, "index": i, "scale": s,
    "side": pasted side, "at": [x, y]}`` with ``index`` into ``pool`` and ``at`` the top-left
    pixel where the rescaled ``side`` x ``side`` digit was pasted.
    """
    size = params.size
    canvas = np.zeros((size, size), dtype=np.uint8)
    objects = []
    for _ in range(int(rng.integers(params.digits[0], params.digits[1] + 1))):
        for _attempt in range(ATTEMPTS):
            index = int(rng.integers(len(pool)))
            scale = float(rng.uniform(*SCALE_RANGE))
            side = max(2, round(28 * scale))
            digit = _resize(pool[index], side)
            rows, cols = np.flatnonzero(digit.any(1)), np.flatnonzero(digit.any(0))
            if len(rows) == 0:
                continue
            top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # tight box in the patch
            # Paste so that the tight box lies inside the canvas (the patch's margins may hang over).
            x = int(rng.integers(-left, size - right + 1))
            y = int(rng.integers(-top, size - bottom + 1))
            box = [x + left, y + top, x + right, y + bottom]
            if _overlap(box, [o["box"] for o in objects]) > MAX_OVERLAP:
                continue
            _paste(canvas, digit, x, y)
            objects.append({"box": [int(v) for v in box], "label": int(pool_labels[index]), "index": index,
                            "scale": scale, "side": side, "at": [x, y]})
            break
    if params.clutter:
        for _ in range(int(rng.integers(1, 4))):
            for _attempt in range(ATTEMPTS):
                source = pool[int(rng.integers(len(pool)))]
                h, w = (int(v) for v in rng.integers(8, 15, size=2))
                r, c = int(rng.integers(0, 28 - h + 1)), int(rng.integers(0, 28 - w + 1))
                piece = source[r:r + h, c:c + w]
                if not piece.any():
                    continue
                x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
                if _overlap([x, y, x + w, y + h], [o["box"] for o in objects]) > 0:
                    continue
                _paste(canvas, piece, x, y)
                break
    return canvas, objects


def _paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """canvas = max(canvas, patch placed at (x, y)), the patch cut to the canvas."""
    size_y, size_x = canvas.shape
    h, w = patch.shape
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + h, size_y), min(x + w, size_x)
    region = canvas[y0:y1, x0:x1]
    np.maximum(region, patch[y0 - y:y1 - y, x0 - x:x1 - x], out=region)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _voc_xml(filename: str, size: int, objects: list[dict]) -> str:
    parts = ["<annotation>", "  <folder>JPEGImages</folder>", f"  <filename>{filename}</filename>",
             f"  <size><width>{size}</width><height>{size}</height><depth>1</depth></size>"]
    for o in objects:
        x1, y1, x2, y2 = o["box"]
        # VOC boxes are 1-based and inclusive: continuous [x1, x2) covers pixels x1 .. x2-1.
        parts += ["  <object>", f"    <name>{o['label']}</name>", "    <difficult>0</difficult>",
                  f"    <bndbox><xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>",
                  "  </object>"]
    return "\n".join(parts + ["</annotation>", ""])


# The most a scenes folder may take (an estimate above it is refused before anything is written).
MAX_OUTPUT_BYTES = 20 * 2**30
SAMPLE_SCENES = 8


def estimate_bytes(mnist, params: SceneParams) -> int:
    """Bytes the folder will take: ``SAMPLE_SCENES`` scenes drawn and encoded, scaled to the count.

    Each sample is a real scene of these parameters (its PNG and its annotation), drawn from its
    own stream, so the estimate follows the size, the digits per scene and the clutter.
    """
    train_x, train_y = mnist[0], mnist[1]
    rng = np.random.default_rng([params.seed, 1 << 20])  # not the train or test stream: the output is unchanged
    total = 0
    for _ in range(SAMPLE_SCENES):
        image, objects = draw_scene(rng, train_x, train_y, params)
        # PNG + annotation file + manifest entry (~ 250 bytes per object), 4 kB per file on most disks
        per = len(_png(image)) + len(_voc_xml("train-000000.png", params.size, objects)) + 250 * len(objects)
        total += max(per, 4096) + 4096
    return total * (params.train + params.test) // SAMPLE_SCENES


def check_output_size(out: Path, mnist, params: SceneParams) -> int:
    """Refuse scenes that would take more than ``MAX_OUTPUT_BYTES`` or the free disk space (with the estimate)."""
    need = estimate_bytes(mnist, params)
    scenes = params.train + params.test
    what = (f"{params.train:,} + {params.test:,} scenes of {params.size}x{params.size} would take about "
            f"{need / 2**30:,.1f} GiB ({need // scenes:,} bytes each)")
    if need > MAX_OUTPUT_BYTES:
        raise CnnlabError(f"{what}, more than the {MAX_OUTPUT_BYTES // 2**30} GiB a scenes folder may take; "
                          "lower --train, --test or --size")
    try:
        free = shutil.disk_usage(out if out.exists() else out.parent).free
    except OSError:
        return need
    if need > free:
        raise CnnlabError(f"{what}, but only {free / 2**30:,.1f} GiB is free there; lower --train, --test or "
                          "--size, or choose another --out")
    return need


def _write_json(path: Path, obj) -> None:
    write_staged_text(path, json.dumps(obj, indent=1) + "\n")


def start_voc_folder(out: Path, classes) -> None:
    """The VOC layout's folders and ``classes.txt`` in the staging folder ``out`` (rundir.staged_run_dir)."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    write_staged_text(out / "classes.txt", "\n".join(classes) + "\n")


def write_voc_image(out: Path, image_id: str, image: np.ndarray, size: int, objects: list[dict]) -> None:
    """``JPEGImages/ID.png`` and ``Annotations/ID.xml`` (objects ``{"box": [x1, y1, x2, y2], "label": d}``)."""
    filename = f"{image_id}.png"
    write_staged_bytes(out / "JPEGImages" / filename, _png(image))
    write_staged_text(out / "Annotations" / f"{image_id}.xml", _voc_xml(filename, size, objects))


def write_voc_split(out: Path, split: str, ids: list[str]) -> None:
    """``ImageSets/Main/SPLIT.txt``: the split's image ids, one a line."""
    write_staged_text(out / "ImageSets" / "Main" / f"{split}.txt", "\n".join(ids) + "\n")


MANIFEST = "scenes.json"


def write_manifest(out: Path, manifest: dict) -> None:
    """``scenes.json``, written last: a folder without it was not finished."""
    _write_json(out / MANIFEST, manifest)


def generate_scenes(out: Path, mnist, params: SceneParams, progress: bool = False) -> dict:
    """Write every scene into the (empty, existing) folder ``out``; returns the manifest.

    ``mnist`` is ``(train_x, train_y, test_x, test_y)`` as from
    :func:`cnnlab.data.locate.load_idx_dataset`. ``scenes.json`` is written last. The files are
    staged writes (:func:`cnnlab.fileio.write_staged_bytes`): ``out`` is built under a hidden name
    and moved into place whole (:func:`cnnlab.rundir.staged_run_dir`, :func:`scenes_root`).
    """
    check_output_size(out, mnist, params)  # before the first file: an impossible size is one line
    train_x, train_y, test_x, test_y = mnist
    streams = np.random.SeedSequence(params.seed).spawn(2)  # independent train and test streams
    manifest = {"generator": "cnnlab mnist-scenes", "version": GENERATOR_VERSION, "params": asdict(params),
                "classes": list(CLASSES), "scale_range": list(SCALE_RANGE),
                "max_overlap": MAX_OVERLAP, "images": {}}
    if params.format == "voc":
        start_voc_folder(out, manifest["classes"])
    else:
        (out / "annotations").mkdir(parents=True, exist_ok=True)
    for split, seq, pool, labels, count in (("train", streams[0], train_x, train_y, params.train),
                                            ("test", streams[1], test_x, test_y, params.test)):
        rng = np.random.default_rng(seq)
        ids = []
        coco = {"images": [], "annotations": [],
                "categories": [{"id": d, "name": str(d)} for d in range(10)]}
        if params.format == "coco":
            (out / split).mkdir(exist_ok=True)
        for i in range(count):
            image, objects = draw_scene(rng, pool, labels, params)
            image_id = f"{split}-{i:06d}"
            filename = f"{image_id}.png"
            ids.append(image_id)
            if params.format == "voc":
                write_voc_image(out, image_id, image, params.size, objects)
            else:
                write_staged_bytes(out / split / filename, _png(image))
                coco["images"].append({"id": i, "file_name": filename, "width": params.size, "height": params.size})
                for o in objects:
                    x1, y1, x2, y2 = o["box"]
                    coco["annotations"].append({"id": len(coco["annotations"]), "image_id": i,
                                                "category_id": o["label"], "bbox": [x1, y1, x2 - x1, y2 - y1],
                                                "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
            manifest["images"][image_id] = [{**o, "split": split} for o in objects]
            if progress and (i + 1) % 1000 == 0:
                print(f"cnnlab: {split}: {i + 1}/{count} scenes", file=sys.stderr)
        if params.format == "voc":
            write_voc_split(out, split, ids)
        else:
            _write_json(out / "annotations" / f"instances_{split}.json", coco)
    write_manifest(out, manifest)
    return manifest


def scenes_root(cfg) -> Path:
    """The folder of ``data.name=mnist-scenes``: ``data.root``, else scenes generated once into the cache.

    The cache folder is ``<data.cache_dir or ~/.cache/cnnlab>/scenes/<key>``, keyed by the
    generation parameters (``data.scenes.*``); it is built under a temporary name and
    renamed into place, so a crash never leaves a half-written set behind.
    """
    if cfg.root:
        root = Path(cfg.root)
        if not root.is_dir():
            raise CnnlabError(f"data.root={cfg.root} is not a folder; give a folder written by "
                              "`cnnlab data make-scenes mnist --out DIR`, or leave data.root unset to generate one")
        return root
    params = params_from_config(cfg)
    base = (Path(cfg.cache_dir) if cfg.cache_dir else folders.default_cache_dir()) / "scenes"
    target = base / params.key()
    if (target / "scenes.json").is_file():
        return target
    mnist = load_idx_dataset("mnist", cfg.data_dir)
    print(f"cnnlab: generating mnist-scenes ({params.train} train + {params.test} test scenes, "
          f"{params.size}x{params.size}) into {target} (once)", file=sys.stderr)
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = base / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
    except OSError as exc:
        raise CnnlabError(f"cannot create the scene cache under {base}: {exc.strerror or exc}; "
                          "set data.cache_dir=DIR to a writable folder, or make scenes with "
                          "`cnnlab data make-scenes` and give data.root=DIR") from None
    try:
        generate_scenes(tmp, mnist, params, progress=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "scenes.json").is_file():  # not another process finishing first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@register_dataset("mnist-scenes", task="detect", classes=CLASSES)
def load_scenes(cfg, problems: Problems):
    """``data.name=mnist-scenes``: the scenes at ``data.root`` or generated into the cache, VOC or COCO."""
    root = scenes_root(cfg)
    reader = read_coco if (root / "annotations").is_dir() else read_voc
    return (*reader(root, cfg.classes or list(CLASSES), problems), root)
