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
