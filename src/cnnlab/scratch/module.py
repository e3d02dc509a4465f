"""The base of every scratch layer: parameters with gradients, train/eval, children.

A layer computes ``forward(x)`` and, from the gradient of its output,
``backward(dy)`` returns the gradient of its input and fills ``p.grad`` for
each of its parameters. No autograd: every backward is written by hand.

>>> import numpy as np
>>> class Scale(Layer):
...     def __init__(self):
...         super().__init__()
...         self.a = Param(np.array([2.0]))
...     def forward(self, x):
...         self._x = x
...         return self.a.value * x
...     def backward(self, dy):
...         self.a.grad = np.array([(dy * self._x).sum()])
...         return dy * self.a.value
>>> layer = Scale()
>>> layer(np.array([1.0, 3.0]))
array([2., 6.])
>>> layer.backward(np.ones(2)), layer.a.grad
(array([2., 2.]), array([4.]))
>>> list(layer.named_params())
['a']
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from cnnlab.errors import CnnlabError


class Param:
    """A trainable array and the gradient the last backward pass left for it."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value
        self.grad = np.zeros_like(value)

    def __repr__(self) -> str:
        return f"Param(shape={self.value.shape}, dtype={self.value.dtype})"


class Layer:
    """Base class: subclasses implement ``forward`` and ``backward``.

    Parameters are the :class:`Param` attributes; sub-layers are the
    :class:`Layer` attributes (or entries of a ``layers`` list). Buffers
    (state that is saved but not trained, like BatchNorm's running averages)
    are listed in ``buffer_names``.
    """

    buffer_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.training = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- structure ----------------------------------------------------------
    def children(self) -> Iterator[tuple[str, "Layer"]]:
        for name, value in vars(self).items():
            if isinstance(value, Layer):
                yield name, value
            elif name == "layers":
                for i, layer in enumerate(value):
                    yield str(i), layer

    def named_params(self, prefix: str = "") -> dict[str, Param]:
        """Every parameter of this layer and its children, by dotted name."""
        out = {prefix + k: v for k, v in vars(self).items() if isinstance(v, Param)}
        for name, child in self.children():
            out.update(child.named_params(f"{prefix}{name}."))
        return out

    def parameters(self) -> list[Param]:
        return list(self.named_params().values())

    def state_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Parameters and buffers as plain arrays, by dotted name (what ``save`` writes)."""
        out = {k: p.value for k, p in self.named_params(prefix).items()}
        self._collect_buffers(prefix, out)
        return out

    def _collect_buffers(self, prefix: str, out: dict) -> None:
        for name in self.buffer_names:
            out[prefix + name] = getattr(self, name)
        for name, child in self.children():
            child._collect_buffers(f"{prefix}{name}.", out)

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into this layer; names and shapes must match exactly."""
        mine = self.state_dict()
        missing, unexpected = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
        if missing or unexpected:
            raise CnnlabError(f"state does not fit this model: missing {missing}, unexpected {unexpected}")
        for key, target in mine.items():
            value = np.asarray(state[key])
            if value.shape != target.shape:
                raise CnnlabError(f"'{key}' has shape {value.shape} in the saved state but {target.shape} here")
            target[...] = value

    def train(self, mode: bool = True) -> "Layer":
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Layer":
        return self.train(False)


class Chain(Layer):
    """Layers in ``self.layers`` applied one after another; backward runs them in reverse."""

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy
