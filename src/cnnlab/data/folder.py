"""Image folders (one sub-folder per class) decoded once into a uint8 tensor cache.

Layouts accepted under a root:

- ``root/<class>/*.png|jpg|jpeg|bmp`` — one pool; a test split is held out;
- ``root/train/<class>/...`` plus ``root/test/<class>/...`` (or ``val/``).

Decoding thousands of JPEGs takes seconds to minutes, so the decoded arrays
are saved in the decoded-image cache (:mod:`cnnlab.data.cache`), keyed by a hash of the folder's listing
(relative paths, sizes, modification times) and the decode options. Adding,
removing or touching any image changes the key and so invalidates the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.data.cache import cache_file, cached_arrays
from cnnlab.errors import CnnlabError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
CACHE_FORMAT = 3  # bump when the decoding changes, so old caches are not reused


@dataclass
class FolderSplit:
    """Decoded images of one split: ``images`` (N, C, H, W) uint8, ``labels`` (N,) int64."""

    images: np.ndarray
    labels: np.ndarray
    skipped: list[str] = field(default_factory=list)


def list_classes(folder: Path) -> list[str]:
    """Sorted names of sub-folders that contain at least one image (ImageFolder order)."""
    return sorted(
        d.name for d in folder.iterdir()
        if d.is_dir() and not d.name.startswith(".") and any(_is_image(p) for p in d.iterdir())
    )


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path, classes: list[str]) -> list[tuple[Path, int]]:
    """(path, class index) of every image under ``folder/<class>/``, sorted for determinism."""
    items = []
    for index, name in enumerate(classes):
        sub = folder / name
        if sub.is_dir():
            items += [(p, index) for p in sorted(sub.iterdir()) if _is_image(p)]
    return items


def split_folders(root: Path) -> tuple[Path, Path | None]:
    """(train folder, test folder or None) for a dataset root."""
    if (root / "train").is_dir():
        for name in ("test", "val"):
            if (root / name).is_dir():
                return root / "train", root / name
        return root / "train", None
    return root, None


def listing_key(items: list[tuple[Path, int]], root: Path, options: dict) -> str:
    """Hash of the listing (relative path, size, mtime) and decode options: the cache key."""
    digest = hashlib.sha256(repr(sorted(options.items())).encode())
    digest.update(f"format={CACHE_FORMAT}".encode())
    for path, label in items:
        st = path.stat()
        digest.update(f"{path.relative_to(root)}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


# Pillow's modes for one channel of more than 8 bits: 16-bit greyscale PNGs open as I;16 (older Pillows: I).
WIDE_GREY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def convert_mode(img, mode: str):
    """``img`` as an 8-bit ``mode`` ("L" or "RGB") image, scaling deeper greyscale instead of clipping it.

    Pillow's ``convert("L")`` clips a 16-bit greyscale value above 255 to white, so a 16-bit PNG
    became almost pure black and white. Here a 16-bit value keeps its high byte (``v >> 8``), as
    Pillow itself reduces 16-bit colour PNGs, so 16-bit and 8-bit copies of a picture decode alike.
    A 32-bit float image ("F") is taken to be on [0, 1] if it lies there, else on [0, 255].

    >>> from PIL import Image
    >>> wide = Image.fromarray(np.array([[0, 257 * 128, 65535]], dtype=np.uint16))
    >>> wide.mode, np.asarray(convert_mode(wide, "L")).tolist()
    ('I;16', [[0, 128, 255]])
    """
    from PIL import Image

    if img.mode in WIDE_GREY_MODES:
        wide = np.asarray(img).astype(np.int64)  # I;16B and friends come out native-endian
        img = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8), "L")
    elif img.mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64))
        scale = 255.0 if values.size and values.min() >= 0.0 and values.max() <= 1.0 else 1.0
        img = Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), "L")
    return img if img.mode == mode else img.convert(mode)


def decode_image(path: Path, size: int, policy: str, mode: str) -> np.ndarray:
    """Decode one file to (C, size, size) uint8 following the resize ``policy`` (see :func:`fit_image`)."""
    from PIL import Image

    with Image.open(path) as img:
        refuse_bomb(img)
        return fit_image(img, size, policy, mode)


def fit_image(img, size: int, policy: str, mode: str) -> np.ndarray:
    """A PIL image converted to ``mode`` and fitted to (C, size, size) uint8 by the resize ``policy``.

    ``resize`` squashes to size x size; ``center_crop`` scales the short side
    to ``size`` and crops the centre; ``pad`` scales the long side to ``size``
    and pads the rest with black. Files and in-memory images (the Python API) share it,
    so the same picture gives the same pixels whichever way it arrives; video frames come through
    here too, so a frame is prepared exactly as the same frame saved to a file.
    """
    from PIL import Image

    img = convert_mode(img, mode)
    w, h = img.size
    if (w, h) != (size, size):
        if policy == "resize":
            img = img.resize((size, size), Image.BILINEAR)
        elif policy == "center_crop":
            scale = size / min(w, h)
            img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            left, top = (img.size[0] - size) // 2, (img.size[1] - size) // 2
            img = img.crop((left, top, left + size, top + size))
        else:  # pad
            scale = size / max(w, h)
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
            canvas = Image.new(mode, (size, size))
            canvas.paste(img, ((size - img.size[0]) // 2, (size - img.size[1]) // 2))
            img = canvas
    array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)


def refuse_bomb(img) -> None:
    """Raise before decoding an image whose header claims more pixels than Pillow's safety limit.

    Pillow itself raises ``DecompressionBombError`` only above twice the limit
    and merely warns in between; a tiny file can claim 30000x30000 pixels and
    decoding it would take gigabytes.
    """
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit and img.size[0] * img.size[1] > limit:
        raise Image.DecompressionBombError(
            f"image claims {img.size[0]}x{img.size[1]} pixels, over the {limit}-pixel safety limit")




@contextlib.contextmanager
def quiet_bomb_warnings():
    """Silence Pillow's DecompressionBombWarning inside (:func:`refuse_bomb` turns it into a skip)."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def probe(items: list[tuple[Path, int]]) -> tuple[int, bool]:
    """(side of the first readable image, whether the sampled images are all greyscale)."""
    from PIL import Image

    side, grey = None, True
    with quiet_bomb_warnings():
        for path, _ in items[:: max(1, len(items) // 64)]:  # sample up to ~64 files
            try:
                with Image.open(path) as img:
                    refuse_bomb(img)
                    side = side or min(img.size)
                    grey = grey and img.mode in ("L", "1", "LA", "F", *WIDE_GREY_MODES)
            except Exception:  # noqa: BLE001 - any broken file is skipped here; decode_all counts it
                continue
    if side is None:
        raise CnnlabError("no readable image found in the folder; check the files are PNG/JPEG/BMP")
    return side, grey


def decode_all(items, size: int, policy: str, mode: str, strict: bool) -> FolderSplit:
    """Decode every file with a thread pool (Pillow releases the GIL while decoding).

    A file that does not decode (truncated, not an image, a decompression bomb)
    is skipped and counted, or is a one-line error when ``strict``.
    """
    channels = 1 if mode == "L" else 3
    images = np.zeros((len(items), channels, size, size), dtype=np.uint8)
    ok = np.ones(len(items), dtype=bool)
    reasons: dict[str, str] = {}

    def work(i: int) -> None:
        path = items[i][0]
        try:
            images[i] = decode_image(path, size, policy, mode)
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for a broken file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            reason = reason.replace(f" '{path}'", "")[:200]  # Pillow repeats the path we already print
            if strict:
                raise CnnlabError(
                    f"cannot read image {path}: {reason}; remove or fix it, or set data.strict=false to skip it"
                ) from None
            ok[i] = False
            reasons[str(path)] = reason

    with quiet_bomb_warnings(), ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        list(pool.map(work, range(len(items))))
    skipped = sorted(reasons)
    for path in skipped[:5]:
        print(f"cnnlab: warning: skipped unreadable image {path} ({reasons[path]})", file=sys.stderr)
    if len(skipped) > 5:
        print(f"cnnlab: warning: ... and {len(skipped) - 5} more unreadable images", file=sys.stderr)
    labels = np.array([label for _, label in items], dtype=np.int64)
    return FolderSplit(images[ok], labels[ok], skipped)


def check_memory(count: int, channels: int, size: int) -> None:
    """Refuse to decode images whose uint8 array would not fit in half of this machine's memory."""
    need = count * channels * size * size
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not every platform reports it
        return
    if need > total // 2:
        raise CnnlabError(
            f"decoding {count} images at {size}x{size}x{channels} needs {need / 2**30:.1f} GiB, more than half of "
            f"this machine's {total / 2**30:.1f} GiB; set data.image_size to a smaller side (e.g. 224)"
        )


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "cnnlab"


def load_folder_split(
    folder: Path,
    classes: list[str],
    size: int,
    policy: str,
    mode: str,
    strict: bool,
    cache_dir: Path | None,
) -> FolderSplit:
    """Decode ``folder``, or read it back from the decoded-image cache (:mod:`cnnlab.data.cache`)."""
    items = list_images(folder, classes)
    if not items:
        raise CnnlabError(f"no images (.png/.jpg/.jpeg/.bmp) found under {folder}/<class>/")
    options = {"size": size, "policy": policy, "mode": mode, "classes": ",".join(classes)}
    path = cache_file(cache_dir or default_cache_dir(), "folders", listing_key(items, folder, options))

    def build() -> FolderSplit:
        check_memory(len(items), 1 if mode == "L" else 3, size)
        return decode_all(items, size, policy, mode, strict)

    split = cached_arrays(
        path, build,
        encode=lambda s: {"images": s.images, "labels": s.labels, "skipped": np.array(s.skipped, dtype=str)},
        decode=lambda z: FolderSplit(z["images"], z["labels"], [str(s) for s in z["skipped"]]))
    if strict and split.skipped:  # only from the cache: a strict decode raises on the first bad file
        raise CnnlabError(f"cannot read image {split.skipped[0]}; remove or fix it, "
                          "or set data.strict=false to skip it")
    return split


def expand_image_paths(paths: list[str]) -> list[str]:
    """Files as given; each folder replaced by its image files (one level, sorted), as ``predict`` reads them.

    A path that does not exist, or a folder without images, is a one-line error.
    """
    out: list[str] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            try:
                found = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            except OSError as exc:
                raise CnnlabError(f"cannot list folder {path}: {exc.strerror or exc}") from None
            if not found:
                raise CnnlabError(f"{path} is a folder with no image files ({'/'.join(IMAGE_SUFFIXES)}) directly "
                                  "inside it; name the image files, or a folder that holds them")
            out.extend(found)
        elif p.is_file():
            out.append(path)
        elif p.exists():
            raise CnnlabError(f"{path} is not a regular file; give image files or a folder of them")
        else:
            raise CnnlabError(f"image file {path} does not exist")
    return out
