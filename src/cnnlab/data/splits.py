"""Stratified splits with a fixed seed: every class keeps its share in each part."""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError


def stratified_split(labels, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)``: ``fraction`` of each class goes to ``held_out``.

    Each class contributes ``round(fraction * count)`` images (at least one
    when the class has two or more), picked by a seeded permutation, so the
    split is the same on every machine.

    >>> keep, held = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.25, seed=0)
    >>> sorted(np.array([0, 0, 0, 0, 1, 1, 1, 1])[held].tolist())
    [0, 1]
    """
    if not 0.0 < fraction < 1.0:
        raise CnnlabError(f"split fraction must be in (0, 1), got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n_held = int(round(fraction * len(idx)))
        if len(idx) >= 2:
            n_held = min(max(n_held, 1), len(idx) - 1)
        else:
            n_held = 0
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held))


def stratified_subset(labels, count: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of exactly ``count`` images, drawn at random per class in proportion to its size.

    Each class gets ``count * class_size / total`` images, rounded down, and
    the images still missing go to the classes with the largest remainders
    (ties: the lower class number), so the total is exact. Within a class the
    images are the last ones of a permutation seeded by ``seed`` -- the same
    permutation :func:`stratified_split` draws, so a subset is what that split
    kept whenever the rounding agrees.

    >>> labels = np.array([0] * 6 + [1] * 3 + [2] * 1)
    >>> subset = stratified_subset(labels, 5, seed=0)
    >>> len(subset), np.bincount(labels[subset]).tolist()
    (5, [3, 2])
    """
    labels = np.asarray(labels)
    if not 0 < count <= len(labels):
        raise CnnlabError(f"a subset of {count} images cannot be drawn from {len(labels)}; "
                          f"choose between 1 and {len(labels)}")
    classes, sizes = np.unique(labels, return_counts=True)
    exact = count * sizes / len(labels)
    quota = np.floor(exact).astype(np.int64)
    missing = count - int(quota.sum())
    order = np.lexsort((np.arange(len(classes)), -(exact - quota)))  # largest remainder first, then class
    quota[order[:missing]] += 1
    rng = np.random.default_rng(seed)
    chosen = []
    for cls, take in zip(classes, quota):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        chosen.append(idx[len(idx) - take:])
    return np.sort(np.concatenate(chosen))


def limit_train(labels, limit: int | None, seed: int = 0) -> np.ndarray | None:
    """Indices kept by ``data.limit_train=limit`` (None: keep every image), refusing a limit that
    would leave some class without a training image (that class could never be learned).

    >>> limit_train(np.array([0, 0, 1, 1, 2, 2]), 3).tolist()
    [1, 3, 5]
    >>> limit_train(np.array([0, 0, 1, 1, 2, 2]), 2)
    Traceback (most recent call last):
    ...
    cnnlab.errors.CnnlabError: data.limit_train=2 is fewer than the 3 classes with training images, so some class would have none; use data.limit_train=3 or more
    """
    labels = np.asarray(labels)
    if not limit or limit >= len(labels):
        return None
    present = len(np.unique(labels))
    if limit < present:
        raise CnnlabError(f"data.limit_train={limit} is fewer than the {present} classes with training images, "
                          f"so some class would have none; use data.limit_train={present} or more")
    return stratified_subset(labels, limit, seed)
