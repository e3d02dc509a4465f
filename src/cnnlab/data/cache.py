"""The decoded-image cache shared by image folders and detection datasets: :func:`cached_arrays`.

Decoding thousands of JPEGs takes seconds to minutes, so a decoded split is saved once as an
uncompressed ``.npz`` (no pickles) under ``<cache dir>/<kind>/<key>.npz`` and read back on the
next load. The caller computes ``key`` from everything the decoded arrays depend on (the files'
sizes and modification times, the decode options, a format number it bumps when its decoding
changes), so a stale entry is never found. A damaged entry is decoded again; an entry that cannot
be written (a read-only home) is a warning, not an error. Entries are written atomically.

>>> import tempfile
>>> tmp = tempfile.TemporaryDirectory()
>>> folder = Path(tmp.name)
>>> build = lambda: {"x": np.arange(3)}
>>> cached_arrays(cache_file(folder, "demo", "k1"), build, encode=dict, decode=lambda z: z["x"].tolist())
{'x': array([0, 1, 2])}
>>> cached_arrays(cache_file(folder, "demo", "k1"), build, encode=dict, decode=lambda z: z["x"].tolist())
[0, 1, 2]
>>> tmp.cleanup()
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Mapping, TypeVar

import numpy as np

from cnnlab.fileio import atomic_path

T = TypeVar("T")


def cache_file(cache_dir: Path, kind: str, key: str | None) -> Path | None:
    """``cache_dir/kind/key.npz``, or None (nothing cached) when there is no ``key``."""
    return None if key is None else Path(cache_dir) / kind / f"{key}.npz"


def cached_arrays(path: Path | None, build: Callable[[], T], *, encode: Callable[[T], Mapping[str, np.ndarray]],
                  decode: Callable[[Mapping[str, np.ndarray]], T],
                  store: Callable[[T], bool] = lambda value: True) -> T:
    """``decode`` of the arrays saved at ``path``; else ``build()``, saved there as ``encode(value)``.

    ``decode`` reads an open ``np.load`` archive; any failure inside it (a damaged, truncated or
    foreign file) falls back to ``build``. A built value is saved only when ``path`` is not None
    and ``store(value)`` is true (detection keeps no split that had counted problems, so its
    warnings come back on every load).
    """
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return decode(stored)
        except (OSError, ValueError, KeyError, EOFError, RuntimeError):
            pass  # a damaged cache is rebuilt below
    value = build()
    if path is None or not store(value):
        return value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **encode(value))
    except OSError as exc:  # a read-only home is not fatal: we just decode again next time
        print(f"cnnlab: warning: could not write the decoded-image cache {path}: {exc}", file=sys.stderr)
    return value
