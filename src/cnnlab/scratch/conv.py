"""Convolution layers in NumPy: ``Conv2d`` with any algorithm, depthwise and separable forms.

>>> import numpy as np
>>> conv = Conv2d(1, 4, 3, padding="same", algorithm="winograd")
>>> conv(np.zeros((2, 1, 28, 28), np.float32)).shape
(2, 4, 28, 28)
>>> SpatiallySeparableConv2d(8, 16, 5, padding=2)(np.zeros((1, 8, 9, 9), np.float32)).shape
(1, 16, 9, 9)
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.geometry import as_pair
from cnnlab.scratch.algorithms import get_algorithm
from cnnlab.scratch.layers import uniform_init
from cnnlab.scratch.module import Chain, Layer, Param


class Conv2d(Layer):
    """2-D convolution (cross-correlation) with ``nn.Conv2d``'s arguments and a choice of algorithm.

    ``algorithm`` is ``direct`` (reference), ``im2col``, ``fft``, ``winograd``
    (F(2×2,3×3)) or ``winograd4`` (F(4×4,3×3)); all give the same result.
    Weight (O, C/groups, kh, kw), bias (O,).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, algorithm="im2col", rng=None, dtype=np.float32):
        super().__init__()
        kh, kw = as_pair(kernel_size, "kernel_size")
        if in_channels % groups or out_channels % groups:
            raise CnnlabError(
                f"in_channels={in_channels} and out_channels={out_channels} must be divisible by groups={groups}"
            )
        rng = rng if rng is not None else np.random.default_rng(0)
        fan_in = in_channels // groups * kh * kw
        self.weight = Param(uniform_init(rng, (out_channels, in_channels // groups, kh, kw), fan_in, dtype))
        self.bias = Param(uniform_init(rng, (out_channels,), fan_in, dtype)) if bias else None
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.algorithm = get_algorithm(algorithm)
        self.input_grad = True  # False for a network's first layer: backward may skip dx and return None

    def forward(self, x):
        b = self.bias.value if self.bias is not None else None
        y, self._ctx = self.algorithm.forward(x, self.weight.value, b, self.stride, self.padding, self.dilation,
                                              self.groups)
        return y

    def backward(self, dy):
        dx, dw, db = self.algorithm.backward(dy, self._ctx, need_dx=self.input_grad)
        self.weight.grad = dw
        if self.bias is not None:
            self.bias.grad = db
        return dx


class DepthwiseConv2d(Conv2d):
    """One k×k filter per input channel (``groups = channels``), ``multiplier`` outputs each."""

    def __init__(self, channels, kernel_size, multiplier=1, stride=1, padding=0, dilation=1, bias=True,
                 algorithm="im2col", rng=None, dtype=np.float32):
        super().__init__(channels, channels * multiplier, kernel_size, stride, padding, dilation, channels, bias,
                         algorithm, rng, dtype)


class DepthwiseSeparableConv2d(Chain):
    """Depthwise k×k (spatial filtering per channel) then pointwise 1×1 (channel mixing).

    Multiplications per output pixel: C·f² + C·N instead of C·N·f², a ratio of
    1/N + 1/f² (see :func:`separable_cost`).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, algorithm="im2col", rng=None, dtype=np.float32):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        self.layers = [
            DepthwiseConv2d(in_channels, kernel_size, 1, stride, padding, dilation, False, algorithm, rng, dtype),
            Conv2d(in_channels, out_channels, 1, groups=groups, bias=bias, algorithm="im2col", rng=rng, dtype=dtype),
        ]


def _split(value, name):
    """'same'/'valid' stay; numbers become their (vertical, horizontal) pair."""
    return (value, value) if isinstance(value, str) else as_pair(value, name)


class SpatiallySeparableConv2d(Chain):
    """A kh×1 convolution (C -> O) then a 1×kw depthwise one: every kernel is rank 1 (a column times a row).

    Stride, padding and dilation split by axis: the vertical pass takes the
    vertical parts and the horizontal pass the horizontal ones.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, algorithm="im2col", rng=None, dtype=np.float32):
        super().__init__()
        rng = rng if rng is not None else np.random.default_rng(0)
        (kh, kw), (sh, sw), (dh, dw) = as_pair(kernel_size, "kernel_size"), as_pair(stride, "stride"), as_pair(
            dilation, "dilation")
        ph, pw = _split(padding, "padding")
        vpad = ph if isinstance(ph, str) else (ph, 0)
        hpad = pw if isinstance(pw, str) else (0, pw)
        self.layers = [
            Conv2d(in_channels, out_channels, (kh, 1), (sh, 1), vpad, (dh, 1), groups, False, algorithm, rng, dtype),
            Conv2d(out_channels, out_channels, (1, kw), (1, sw), hpad, (1, dw), out_channels, bias, algorithm, rng,
                   dtype),
        ]

    def effective_weight(self) -> np.ndarray:
        """The full (O, C/groups, kh, kw) kernel this layer applies: column ⊗ row per kernel."""
        col = self.layers[0].weight.value[..., 0]  # (O, C/G, kh)
        row = self.layers[1].weight.value[:, 0, 0, :]  # (O, kw)
        return col[..., :, None] * row[:, None, None, :]


def decompose_kernel(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best rank-1 approximation ``col ⊗ row`` of each kh×kw kernel (last two axes), by SVD.

    Returns ``(col (..., kh), row (..., kw), relative_error (...))`` where the
    error is ‖K − col⊗row‖ / ‖K‖ (Frobenius): 0 when the kernel is separable.

    >>> sobel = np.array([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]])
    >>> col, row, err = decompose_kernel(sobel)
    >>> np.allclose(np.outer(col, row), sobel), float(err) < 1e-12
    (True, True)
    >>> float(decompose_kernel(np.eye(3))[2]).__round__(3)   # the identity has rank 3
    0.816
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim < 2:
        raise CnnlabError(f"expected a kernel of shape (..., kh, kw), got {kernel.shape}")
    u, s, vt = np.linalg.svd(kernel)
    root = np.sqrt(s[..., 0])
    col, row = u[..., :, 0] * root[..., None], vt[..., 0, :] * root[..., None]
    norm = np.sqrt((s**2).sum(axis=-1))
    error = np.sqrt((s[..., 1:] ** 2).sum(axis=-1)) / np.where(norm > 0, norm, 1.0)
    return col, row, error


def separable_cost(out_channels: int, kernel: int, in_channels: int = 1, height: int = 1, width: int = 1) -> dict:
    """Multiplications of standard vs depthwise-separable convolution ('same' size, stride 1).

    standard = H·W·C·N·f², separable = H·W·C·(f² + N), ratio = 1/N + 1/f².

    >>> round(separable_cost(512, 5)["ratio"], 4)
    0.042
    """
    standard = height * width * in_channels * out_channels * kernel**2
    separable = height * width * in_channels * (kernel**2 + out_channels)
    return {"standard": standard, "separable": separable, "ratio": separable / standard}
