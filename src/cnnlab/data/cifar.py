"""Reader for the CIFAR-10/100 "python version" batches, without unpickling objects.

The batches are pickles of a dict holding a NumPy array. Unpickling can run
arbitrary code, so :class:`SafeUnpickler` allows only the few NumPy
reconstruction functions an array needs and refuses every other global.
"""

from __future__ import annotations

import io
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


MAX_BATCH_BYTES = 1 << 30  # the largest real batch (CIFAR-100 train) is 155 MB


def _reason(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def load_batch(path: str | os.PathLike) -> dict:
    """One CIFAR batch file -> dict with str keys (``data``, ``labels`` / ``fine_labels``).

    The file is read whole and unpickled from memory, so a damaged length
    field cannot make the unpickler allocate more than the file holds.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BATCH_BYTES:
            raise CnnlabError(f"{path} is {path.stat().st_size} bytes, far larger than a CIFAR batch; re-copy it")
        raw = SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except CnnlabError:
        raise
    except pickle.UnpicklingError as exc:
        raise CnnlabError(f"cannot read CIFAR batch {path}: {_reason(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - damaged pickles raise many types (EOF, Key, Index, Memory...)
        raise CnnlabError(f"cannot read CIFAR batch {path}: {_reason(exc)}; the file is damaged, re-copy it") from None
    if not isinstance(raw, dict):
        raise CnnlabError(f"{path} is not a CIFAR batch (holds {type(raw).__name__}, expected a dict)")
    return {(k.decode(errors="replace") if isinstance(k, bytes) else str(k)): v for k, v in raw.items()}


def _images(batch: dict, path: Path) -> np.ndarray:
    try:
        data = np.asarray(batch.get("data"))
    except (ValueError, TypeError) as exc:
        raise CnnlabError(f"{path}: 'data' is not an array ({_reason(exc)}); re-copy the file") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise CnnlabError(f"{path}: 'data' has shape {data.shape} and type {data.dtype}, expected (N, 3072) uint8")
    return data.reshape(-1, 3, 32, 32)  # (N, C, H, W): stored channel-major


def _labels(batch: dict, key: str, classes: int, path: Path) -> np.ndarray:
    try:
        labels = np.asarray(batch.get(key), dtype=np.int64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CnnlabError(f"{path}: '{key}' is not a list of class numbers ({_reason(exc)}); re-copy it") from None
    if labels.ndim != 1:
        raise CnnlabError(f"{path}: '{key}' has shape {labels.shape}, expected a list of class numbers")
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise CnnlabError(f"{path}: '{key}' holds classes {labels.min()}..{labels.max()}, "
                          f"expected 0..{classes - 1}; re-copy the file")
    return labels


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
        labels = _labels(batch, label_key, classes, path)
        images = _images(batch, path)
        if len(labels) != len(images):
            raise CnnlabError(f"{path}: {len(images)} images but {len(labels)} labels")
        parts.append((images, labels))
    train_x = np.concatenate([p[0] for p in parts[:-1]])
    train_y = np.concatenate([p[1] for p in parts[:-1]])
    test_x, test_y = parts[-1]
    stored = load_batch(meta_file).get(names_key)
    if stored is None:  # no names stored: number the classes
        return train_x, train_y, test_x, test_y, [str(i) for i in range(classes)]
    if not isinstance(stored, (list, tuple)) or len(stored) != classes:
        raise CnnlabError(f"{meta_file}: '{names_key}' should list {classes} class names; re-copy the file")
    names = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in stored]
    return train_x, train_y, test_x, test_y, names


def write_batch(path: str | os.PathLike, images: np.ndarray, labels, label_key: str = "labels") -> None:
    """Write a CIFAR-format batch (tests use it to make small files in the real format)."""
    payload = {b"data": np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1),
               label_key.encode(): [int(v) for v in labels], b"batch_label": b"written by cnnlab"}
    with open(path, "wb") as fh:
        pickle.dump(payload, fh, protocol=2)
