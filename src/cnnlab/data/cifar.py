"""Reader for the CIFAR-10/100 "python version" batches, without unpickling objects.

The batches are pickles of a dict holding a NumPy array. Unpickling can run
arbitrary code, so :class:`SafeUnpickler` allows only the few NumPy
reconstruction functions an array needs and refuses every other global.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from cnnlab.errors import CnnlabError

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickle plain data and NumPy arrays only; any other class is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not plain array data")


def load_batch(path: str | os.PathLike) -> dict:
    """One CIFAR batch file -> dict with str keys (``data``, ``labels`` / ``fine_labels``)."""
    try:
        with open(path, "rb") as fh:
            raw = SafeUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
        raise CnnlabError(f"cannot read CIFAR batch {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise CnnlabError(f"{path} is not a CIFAR batch (holds {type(raw).__name__}, expected a dict)")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def _images(batch: dict, path: Path) -> np.ndarray:
    data = np.asarray(batch.get("data"), dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CnnlabError(f"{path}: 'data' has shape {data.shape}, expected (N, 3072)")
    return data.reshape(-1, 3, 32, 32)  # (N, C, H, W): stored channel-major


def load_cifar(folder: str | os.PathLike, classes: int = 10):
    """CIFAR-10 or -100 batch folder -> (train_x (N,3,32,32), train_y, test_x, test_y, class_names)."""
    folder = Path(folder)
    if classes == 10:
        train_files = [folder / f"data_batch_{i}" for i in range(1, 6)]
        test_file, meta_file, label_key, names_key = folder / "test_batch", folder / "batches.meta", "labels", "label_names"
    else:
        train_files = [folder / "train"]
        test_file, meta_file, label_key, names_key = folder / "test", folder / "meta", "fine_labels", "fine_label_names"
    parts = []
    for path in train_files + [test_file]:
        batch = load_batch(path)
        labels = np.asarray(batch.get(label_key), dtype=np.int64)
        images = _images(batch, path)
        if len(labels) != len(images):
            raise CnnlabError(f"{path}: {len(images)} images but {len(labels)} labels")
        parts.append((images, labels))
    train_x = np.concatenate([p[0] for p in parts[:-1]])
    train_y = np.concatenate([p[1] for p in parts[:-1]])
    test_x, test_y = parts[-1]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in load_batch(meta_file).get(names_key, [])]
    return train_x, train_y, test_x, test_y, names or [str(i) for i in range(classes)]


def write_batch(path: str | os.PathLike, images: np.ndarray, labels, label_key: str = "labels") -> None:
    """Write a CIFAR-format batch (tests use it to make small files in the real format)."""
    payload = {b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1),
               label_key.encode(): [int(v) for v in labels], b"batch_label": b"written by cnnlab"}
    with open(path, "wb") as fh:
        pickle.dump(payload, fh, protocol=2)
