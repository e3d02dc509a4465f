"""The same picture saved in rare image modes, each with its 8-bit reference.

:func:`write_png` writes PNGs of any colour type and bit depth itself (Pillow cannot write 16-bit
colour), so the tests control the bytes on disk. :func:`mode_copies` saves one 8-bit greyscale
picture as 16-bit greyscale, 16-bit grey + alpha, 16-bit RGB and RGBA, 1-bit, palette, grey +
alpha, RGBA and BMP; each decodes to the 8-bit original (bilevel: its thresholded version).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def write_png(path: Path, pixels: np.ndarray, depth: int = 8) -> Path:
    """``pixels`` (H, W) or (H, W, C) of uint8 (depth 8) or uint16 (depth 16) as a PNG, written byte by byte."""
    array = pixels if pixels.ndim == 3 else pixels[:, :, None]
    h, w, c = array.shape
    big_endian = array.astype(">u2" if depth == 16 else "u1")

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + big_endian[y].tobytes() for y in range(h))  # filter type 0 per row
    ihdr = struct.pack(">IIBBBBB", w, h, depth, COLOUR_TYPES[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def mode_copies(grey: np.ndarray, folder: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """name -> (file, the 8-bit greyscale it must decode to) for ``grey`` (H, W) uint8 in every rare mode."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    wide = grey.astype(np.uint16) * 257  # the same picture on 0..65535: its high byte is the 8-bit value
    opaque = np.full_like(wide, 65535)
    rgb8 = np.stack([grey] * 3, -1)
    copies = {
        "grey16": write_png(folder / "grey16.png", wide, 16),
        "grey16-alpha": write_png(folder / "grey16a.png", np.stack([wide, opaque], -1), 16),
        "rgb16": write_png(folder / "rgb16.png", np.stack([wide] * 3, -1), 16),
        "rgba16": write_png(folder / "rgba16.png", np.stack([wide] * 3 + [opaque], -1), 16),
        "grey8": write_png(folder / "grey8.png", grey, 8),
    }
    out = {name: (path, grey) for name, path in copies.items()}
    for name, img in (("palette", Image.fromarray(rgb8).quantize(256, method=Image.Quantize.MAXCOVERAGE)),
                      ("grey-alpha", Image.fromarray(np.stack([grey, np.full_like(grey, 255)], -1), "LA")),
                      ("rgba", Image.fromarray(np.stack([grey] * 3 + [np.full_like(grey, 255)], -1), "RGBA"))):
        path = folder / f"{name}.png"
        img.save(path)
        with Image.open(path) as back:  # a palette keeps the picture only as well as its colours do
            reference = np.asarray(back.convert("RGB").convert("L")) if name == "palette" else grey
        out[name] = (path, reference)
    bilevel = (grey >= 128).astype(np.uint8) * 255
    Image.fromarray(bilevel).convert("1").save(folder / "bilevel.png")
    out["bilevel"] = (folder / "bilevel.png", bilevel)
    Image.fromarray(grey).save(folder / "grey.bmp")
    out["bmp"] = (folder / "grey.bmp", grey)
    return out
