"""A container of layers with save/load.

>>> import numpy as np, tempfile, os
>>> from cnnlab.scratch.layers import Dense, ReLU
>>> net = Sequential(Dense(4, 8), ReLU(), Dense(8, 2))
>>> net(np.ones((3, 4), np.float32)).shape
(3, 2)
>>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
>>> net.save(path)
>>> other = Sequential(Dense(4, 8, rng=np.random.default_rng(5)), ReLU(), Dense(8, 2))
>>> other.load(path)
>>> bool(np.array_equal(other(np.ones((3, 4), np.float32)), net(np.ones((3, 4), np.float32))))
True
"""

from __future__ import annotations

import os

import numpy as np

from cnnlab.scratch.module import Chain, Layer


class Sequential(Chain):
    """Layers applied in order; backward runs them in reverse."""

    def __init__(self, *layers: Layer):
        super().__init__()
        self.layers = list(layers)

    def save(self, path: str | os.PathLike) -> None:
        """Write every parameter and buffer to an ``.npz`` file (names like ``0.weight``)."""
        with open(path, "wb") as f:  # a file object: numpy adds no ".npz" to the name
            np.savez(f, **self.state_dict())

    def load(self, path: str | os.PathLike) -> None:
        """Read a file written by :meth:`save` into this (identically built) network."""
        with np.load(path) as data:
            self.load_state_dict({k: data[k] for k in data.files})
