"""Max and average pooling (window, stride, padding) and global pooling, by hand.

>>> import numpy as np
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> MaxPool2d(2)(x)[0, 0]
array([[ 5.,  7.],
       [13., 15.]])
>>> AvgPool2d(2)(x)[0, 0]
array([[ 2.5,  4.5],
       [10.5, 12.5]])
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.geometry import as_pair
from cnnlab.scratch.algorithms.base import window
from cnnlab.scratch.geometry import conv_geometry
from cnnlab.scratch.layers import check_rank
from cnnlab.scratch.module import Layer


class _Pool2d(Layer):
    fill = 0.0

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel = as_pair(kernel_size, "kernel_size")
        self.stride = as_pair(stride if stride is not None else kernel_size, "stride")
        self.padding = as_pair(padding, "padding")
        if self.padding[0] > self.kernel[0] // 2 or self.padding[1] > self.kernel[1] // 2:
            raise CnnlabError(f"pool padding {self.padding} must be at most half the window {self.kernel}")

    def _geometry_and_pad(self, x):
        check_rank(x, (4,), type(self).__name__, "(N, C, H, W)")
        n, c = x.shape[:2]
        # pooling is a depthwise "convolution" with a fixed kernel: reuse its geometry and windows
        geom = conv_geometry(x.shape, (c, 1) + self.kernel, self.stride, self.padding, 1, c)
        (pt, pb), (pl, pr) = geom.padding
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=self.fill) if pt or pl else x
        return geom, xp


class MaxPool2d(_Pool2d):
    """The largest value in each window; the gradient goes to that (first) maximum."""

    fill = -np.inf

    def forward(self, x):
        geom, xp = self._geometry_and_pad(x)
        offsets = [(i, j) for i in range(self.kernel[0]) for j in range(self.kernel[1])]
        y = window(xp, *offsets[0], geom).copy()  # (N, C, Ho, Wo)
        for i, j in offsets[1:]:
            np.maximum(y, window(xp, i, j, geom), out=y)
        # windows that tile the input exactly (the usual 2x2 / stride 2): each pixel in one window
        tiled = xp is x and self.stride == self.kernel and geom.out == (x.shape[2] // self.kernel[0],
                                                                         x.shape[3] // self.kernel[1])
        tiled = tiled and x.shape[2] % self.kernel[0] == 0 and x.shape[3] % self.kernel[1] == 0
        self._cache = (geom, xp, y, offsets, x.shape, tiled)
        return y

    def backward(self, dy):
        geom, xp, y, offsets, shape, tiled = self._cache
        dxp = np.empty(xp.shape, dtype=dy.dtype) if tiled else np.zeros(xp.shape, dtype=dy.dtype)
        taken = np.zeros(y.shape, dtype=bool)
        for i, j in offsets:  # route each output's gradient to the first position holding the max
            hit = window(xp, i, j, geom) == y
            hit &= ~taken
            taken |= hit
            if tiled:
                np.multiply(dy, hit, out=window(dxp, i, j, geom))
            else:
                window(dxp, i, j, geom)[...] += dy * hit
        (pt, _), (pl, _) = geom.padding
        return dxp[:, :, pt : pt + shape[2], pl : pl + shape[3]]


class AvgPool2d(_Pool2d):
    """The mean of each window; padded zeros count in the mean (PyTorch's default)."""

    def forward(self, x):
        geom, xp = self._geometry_and_pad(x)
        area = self.kernel[0] * self.kernel[1]
        y = np.zeros((x.shape[0], x.shape[1]) + geom.out, dtype=x.dtype)
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                y += window(xp, i, j, geom)
        self._cache = (geom, xp.shape, x.shape)
        return y / area

    def backward(self, dy):
        geom, padded_shape, shape = self._cache
        dxp = np.zeros(padded_shape, dtype=dy.dtype)
        share = dy / (self.kernel[0] * self.kernel[1])
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                window(dxp, i, j, geom)[...] += share
        (pt, _), (pl, _) = geom.padding
        return dxp[:, :, pt : pt + shape[2], pl : pl + shape[3]]


class GlobalAvgPool(Layer):
    """(N, C, H, W) -> (N, C): the mean over each whole map."""

    def forward(self, x):
        check_rank(x, (4,), "GlobalAvgPool", "(N, C, H, W)")
        self._shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dy):
        n, c, h, w = self._shape
        return np.broadcast_to(dy[:, :, None, None] / (h * w), self._shape).copy()


class GlobalMaxPool(Layer):
    """(N, C, H, W) -> (N, C): the maximum of each whole map; gradient to its first argmax."""

    def forward(self, x):
        check_rank(x, (4,), "GlobalMaxPool", "(N, C, H, W)")
        n, c = x.shape[:2]
        flat = x.reshape(n, c, -1)
        self._arg, self._shape = flat.argmax(axis=2), x.shape  # (N, C)
        return np.take_along_axis(flat, self._arg[..., None], axis=2)[..., 0]

    def backward(self, dy):
        n, c = self._shape[:2]
        dx = np.zeros((n, c, self._shape[2] * self._shape[3]), dtype=dy.dtype)
        np.put_along_axis(dx, self._arg[..., None], dy[..., None], axis=2)
        return dx.reshape(self._shape)
