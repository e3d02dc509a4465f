"""Dense, Flatten, activations, Dropout, DropConnect and BatchNorm — forward and backward by hand.

>>> import numpy as np
>>> relu = ReLU()
>>> relu(np.array([-1.0, 2.0])), relu.backward(np.array([5.0, 5.0]))
(array([0., 2.]), array([0., 5.]))
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.module import Layer, Param


def uniform_init(rng: np.random.Generator, shape, fan_in: int, dtype) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for conv and linear weights."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def check_rank(x: np.ndarray, ranks: tuple[int, ...], layer: str, expected: str) -> None:
    if x.ndim not in ranks:
        raise CnnlabError(f"{layer} expects input of shape {expected}, got {x.shape}")


class Dense(Layer):
    """y = x Wᵀ + b for x (N, in); W (out, in) as in ``torch.nn.Linear``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None, dtype=np.float32):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.weight = Param(uniform_init(rng, (out_features, in_features), in_features, dtype))
        self.bias = Param(uniform_init(rng, (out_features,), in_features, dtype)) if bias else None

    def _effective_weight(self) -> np.ndarray:
        return self.weight.value

    def forward(self, x):
        check_rank(x, (2,), "Dense", f"(N, {self.weight.value.shape[1]})")
        if x.shape[1] != self.weight.value.shape[1]:
            raise CnnlabError(f"Dense expects (N, {self.weight.value.shape[1]}) features, got {x.shape}")
        self._x = x
        self._w = self._effective_weight()
        y = x @ self._w.T  # (N, out)
        return y + self.bias.value if self.bias is not None else y

    def _weight_grad(self, dw: np.ndarray) -> np.ndarray:
        return dw

    def backward(self, dy):
        self.weight.grad = self._weight_grad(dy.T @ self._x)  # (out, in), summed over the batch
        if self.bias is not None:
            self.bias.grad = dy.sum(axis=0)
        return dy @ self._w  # (N, in)


class DropConnectDense(Dense):
    """Dense whose *weights* (not activations) are dropped with probability ``p`` while training.

    Kept weights are scaled by 1/(1-p) so evaluation uses W unchanged. A new
    mask is drawn for every batch (shared by the batch's examples).
    """

    def __init__(self, in_features, out_features, p: float = 0.5, bias=True, rng=None, dtype=np.float32):
        if not 0.0 <= p < 1.0:
            raise CnnlabError(f"DropConnect probability must be in [0, 1), got {p}")
        super().__init__(in_features, out_features, bias, rng, dtype)
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._scale = None

    def _effective_weight(self):
        if not self.training or self.p == 0:
            self._scale = None
            return self.weight.value
        keep = self.rng.random(self.weight.value.shape) >= self.p
        self._scale = keep.astype(self.weight.value.dtype) / (1.0 - self.p)  # (out, in)
        return self.weight.value * self._scale

    def _weight_grad(self, dw):
        return dw if self._scale is None else dw * self._scale


class Flatten(Layer):
    """(N, C, H, W) -> (N, C*H*W)."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._shape)


class ReLU(Layer):
    def forward(self, x):
        self._mask = x > 0
        return np.maximum(x, 0, dtype=x.dtype)

    def backward(self, dy):
        return dy * self._mask


class LeakyReLU(Layer):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.slope = negative_slope

    def forward(self, x):
        self._mask = x > 0
        return np.where(self._mask, x, self.slope * x)

    def backward(self, dy):
        return np.where(self._mask, dy, self.slope * dy)


class Sigmoid(Layer):
    def forward(self, x):
        self._y = 0.5 * (1.0 + np.tanh(0.5 * x))  # = 1 / (1 + e^-x) without overflow
        return self._y

    def backward(self, dy):
        return dy * self._y * (1.0 - self._y)


class Tanh(Layer):
    def forward(self, x):
        self._y = np.tanh(x)
        return self._y

    def backward(self, dy):
        return dy * (1.0 - self._y**2)


class Dropout(Layer):
    """Inverted dropout: zero each activation with probability ``p`` and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise CnnlabError(f"Dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng(0)

    def forward(self, x):
        if not self.training or self.p == 0:
            self._scale = None
            return x
        self._scale = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / (1.0 - self.p)
        return x * self._scale

    def backward(self, dy):
        return dy if self._scale is None else dy * self._scale


class BatchNorm(Layer):
    """Batch normalisation over (N,) of (N, C) or over (N, H, W) of (N, C, H, W).

    Training normalises with the batch mean and (biased) variance and updates
    running averages (``momentum`` 0.1, unbiased variance, as PyTorch);
    evaluation normalises with the running averages.
    """

    buffer_names = ("running_mean", "running_var")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float32):
        super().__init__()
        self.gamma = Param(np.ones(num_features, dtype=dtype))
        self.beta = Param(np.zeros(num_features, dtype=dtype))
        self.running_mean = np.zeros(num_features, dtype=dtype)
        self.running_var = np.ones(num_features, dtype=dtype)
        self.eps, self.momentum = eps, momentum

    def forward(self, x):
        check_rank(x, (2, 4), "BatchNorm", "(N, C) or (N, C, H, W)")
        c = self.gamma.value.shape[0]
        if x.shape[1] != c:
            raise CnnlabError(f"BatchNorm has {c} channels but the input {x.shape} has {x.shape[1]}")
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        shape = (1, c) if x.ndim == 2 else (1, c, 1, 1)
        if self.training:
            count = x.size // c
            if count < 2:
                raise CnnlabError(f"BatchNorm in training needs more than one value per channel, got input {x.shape}")
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            self.running_mean[...] = (1 - self.momentum) * self.running_mean + self.momentum * mean
            self.running_var[...] = (1 - self.momentum) * self.running_var + self.momentum * var * count / (count - 1)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = (1.0 / np.sqrt(var + self.eps)).reshape(shape)
        self._xhat = (x - mean.reshape(shape)) * inv_std
        self._inv_std, self._axes, self._shape = inv_std, axes, shape
        self._batch_stats = self.training
        return self.gamma.value.reshape(shape) * self._xhat + self.beta.value.reshape(shape)

    def backward(self, dy):
        xhat, axes, shape = self._xhat, self._axes, self._shape
        self.gamma.grad = (dy * xhat).sum(axis=axes)
        self.beta.grad = dy.sum(axis=axes)
        dxhat = dy * self.gamma.value.reshape(shape)
        if not self._batch_stats:  # running statistics are constants
            return dxhat * self._inv_std
        # the batch mean and variance depend on x too:
        # dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        return self._inv_std * (
            dxhat - dxhat.mean(axis=axes, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
        )
