"""Writing files atomically: the one helper every command uses.

A file is written to a temporary name in the same folder, flushed to disk,
then renamed over the target. A crash, a full disk or Ctrl-C leaves either the
old file or the new one, never half of one, and the temporary file is removed.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_json_atomic(folder / "summary.json", {"test_accuracy": 0.99})
>>> (folder / "summary.json").read_text()
'{\\n  "test_accuracy": 0.99\\n}\\n'
>>> with atomic_path(folder / "plot.png") as tmp:   # for writers that want a path
...     _ = tmp.write_bytes(b"png bytes")
>>> sorted(p.name for p in folder.iterdir())
['plot.png', 'summary.json']
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed.

    Use it with writers that take a file name (``fig.savefig``, ``np.savez``, ``torch.save``).
    The temporary name keeps the suffix, since some writers choose the format by it.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the writer may not have flushed to disk
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON plus a newline (non-JSON values via ``str``)."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")
