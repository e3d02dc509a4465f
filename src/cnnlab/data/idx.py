"""Reader for the IDX format of MNIST and Fashion-MNIST (gzipped or not).

An IDX file is big-endian: two zero bytes, a type code, the number of
dimensions, one uint32 per dimension, then the data. Images have magic 2051
(type 0x08 = uint8, 3 dims); labels 2049 (1 dim).

>>> import numpy as np, gzip, tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "x.idx1-ubyte")
>>> write_idx(path, np.array([3, 1, 4], dtype=np.uint8))
>>> read_idx(path).tolist()
[3, 1, 4]
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# Deflate cannot expand data by more than about 1032:1, so a gzip file whose header claims more
# than this many bytes per compressed byte is damaged (or hostile): refuse before allocating.
_MAX_GZIP_RATIO = 1100


def _header(fh, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, header bytes) from the start of an IDX stream."""
    head = fh.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _DTYPES:
        raise CnnlabError(f"{path} is not an IDX file (bad magic number {head.hex() or 'none'}); re-copy it")
    ndim = head[3]
    dims = fh.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise CnnlabError(f"{path} is truncated: its header needs {4 + 4 * ndim} bytes, "
                          f"the file has {4 + len(dims)}; re-copy it")
    return np.dtype(_DTYPES[head[2]]), struct.unpack(f">{ndim}I", dims), 4 + 4 * ndim


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a NumPy array of its stored shape.

    The header's dimensions are checked against the file's size before any
    array is allocated (for gzip, against the size recorded in its trailer),
    so a damaged header is a one-line error, not a huge allocation.
    """
    path = Path(path)
    try:
        file_size = path.stat().st_size
        trailer_size = -1
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
            if gzipped and file_size >= 18:  # 10-byte header, 8-byte trailer (CRC32, size)
                fh.seek(-4, os.SEEK_END)
                trailer_size = int.from_bytes(fh.read(4), "little")
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as fh:
            dtype, shape, header = _header(fh, path)
            expected = math.prod(shape) * dtype.itemsize
            if gzipped:
                # The trailer holds the uncompressed size modulo 2**32: a mismatch means damage.
                if (header + expected) % 2**32 != trailer_size or expected > _MAX_GZIP_RATIO * file_size:
                    raise CnnlabError(
                        f"{path} is damaged or truncated: its header claims shape {shape} ({expected} data bytes), "
                        f"which its {file_size}-byte gzip stream does not hold; re-copy it")
            elif file_size - header != expected:
                raise CnnlabError(f"{path} is truncated or padded: shape {shape} needs {expected} data bytes, "
                                  f"found {file_size - header}; re-copy it")
            buffer = np.empty(expected, dtype=np.uint8)
            filled = 0
            view = memoryview(buffer)
            while filled < expected and (n := fh.readinto(view[filled:])):
                filled += n
            extra = fh.read(1)
    except CnnlabError:
        raise
    except (OSError, EOFError, zlib.error, ValueError, MemoryError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CnnlabError(f"cannot read IDX file {path}: {reason}; the file is damaged, re-copy it") from None
    if filled != expected or extra:
        raise CnnlabError(f"{path} is truncated or padded: shape {shape} needs {expected} data bytes, "
                          f"found {'more' if extra else filled}; re-copy it")
    try:  # a header with a zero dimension holds no bytes, yet its other dimensions can be absurd
        array = buffer.view(dtype).reshape(shape)
    except ValueError as exc:
        raise CnnlabError(f"{path} has a header of shape {shape} that no array can take ({exc}); "
                          "the file is damaged, re-copy it") from None
    # uint8 needs no conversion; wider types are stored big-endian and are converted to native order.
    return array.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` (uint8) as an IDX file; gzip when the name ends in ``.gz``."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    compress = str(path).endswith(".gz") if compress is None else compress
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(header + array.tobytes())
