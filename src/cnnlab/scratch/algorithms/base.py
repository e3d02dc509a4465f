"""The base class every convolution algorithm shares.

An algorithm implements two methods on an already zero-padded input:
``_forward(xp, w, geom) -> (y, cache)`` and ``_backward(dy, cache, geom) ->
(dxp, dw)``. The base class owns the plumbing: shape checks, padding, bias and
cropping the padding back off the input gradient.

>>> import numpy as np
>>> from cnnlab.scratch.algorithms import get_algorithm
>>> x = np.ones((1, 1, 4, 4)); w = np.ones((1, 1, 3, 3))
>>> y, ctx = get_algorithm("direct").forward(x, w, padding=1)
>>> y[0, 0]
array([[4., 6., 6., 4.],
       [6., 9., 9., 6.],
       [6., 9., 9., 6.],
       [4., 6., 6., 4.]])
>>> dx, dw, db = get_algorithm("direct").backward(np.ones_like(y), ctx)
>>> dw[0, 0]            # each weight was applied at 3*3 + ... positions: the sum of the input under it
array([[ 9., 12.,  9.],
       [12., 16., 12.],
       [ 9., 12.,  9.]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.geometry import ConvGeometry, conv_geometry


@dataclass
class ConvContext:
    """What the backward pass needs from the forward pass."""

    geom: ConvGeometry
    cache: Any
    has_bias: bool


class ConvAlgorithm:
    """One way of computing a 2-D cross-correlation (what deep learning calls convolution)."""

    name = "base"

    def unsupported(self, geom: ConvGeometry) -> str | None:
        """Why this algorithm cannot compute ``geom`` (None when it can)."""
        return None

    # -- to implement -------------------------------------------------------
    def _forward(self, xp: np.ndarray, w: np.ndarray, geom: ConvGeometry) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def _backward(self, dy: np.ndarray, cache: Any, geom: ConvGeometry, need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """(dxp, dw); algorithms may skip dxp (return None) when ``need_dx`` is False."""
        raise NotImplementedError

    # -- plumbing -----------------------------------------------------------
    def forward(self, x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> tuple[np.ndarray, ConvContext]:
        """y = conv(x, w) + b for x (N, C, H, W), w (O, C/groups, kh, kw), b (O,) or None."""
        x, w = np.asarray(x), np.asarray(w)
        geom = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups)
        if b is not None and np.shape(b) != (geom.out_channels,):
            raise CnnlabError(f"bias must have shape ({geom.out_channels},), got {np.shape(b)}")
        reason = self.unsupported(geom)
        if reason:
            raise CnnlabError(f"algorithm '{self.name}' {reason}")
        (pt, pb), (pl, pr) = geom.padding
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if pt or pb or pl or pr else x  # (N, C, Hp, Wp)
        y, cache = self._forward(xp, w, geom)  # (N, O, Ho, Wo)
        if b is not None:
            y += np.asarray(b, dtype=y.dtype).reshape(1, -1, 1, 1)
        return y, ConvContext(geom, cache, b is not None)

    def backward(self, dy, ctx: ConvContext, need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """(dx, dw, db) from the gradient ``dy`` (N, O, Ho, Wo) of the output.

        ``need_dx=False`` (a network's first layer) lets an algorithm skip dx; it is then None.
        """
        geom = ctx.geom
        expected = (geom.batch, geom.out_channels) + geom.out
        if tuple(dy.shape) != expected:
            raise CnnlabError(f"output gradient must have shape {expected}, got {tuple(dy.shape)}")
        dxp, dw = self._backward(np.ascontiguousarray(dy), ctx.cache, geom, need_dx)
        db = dy.sum(axis=(0, 2, 3)) if ctx.has_bias else None
        if dxp is None or not need_dx:
            return None, dw, db
        (pt, _), (pl, _) = geom.padding
        h, w_ = geom.padded[0] - sum(geom.padding[0]), geom.padded[1] - sum(geom.padding[1])
        dx = dxp[:, :, pt : pt + h, pl : pl + w_]  # crop the padding off: (N, C, H, W)
        return dx, dw, db


def window(xp: np.ndarray, i: int, j: int, geom: ConvGeometry) -> np.ndarray:
    """The input pixels that kernel offset (i, j) multiplies, for every output position.

    A strided view of ``xp`` (..., Hp, Wp) of shape (..., Ho, Wo).
    """
    (sh, sw), (dh, dw), (ho, wo) = geom.stride, geom.dilation, geom.out
    top, left = i * dh, j * dw
    return xp[..., top : top + sh * (ho - 1) + 1 : sh, left : left + sw * (wo - 1) + 1 : sw]
