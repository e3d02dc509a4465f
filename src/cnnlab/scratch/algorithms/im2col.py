"""im2col: unfold every receptive field into a column, then one matrix product per group.

``cols`` has shape (G, C/G * kh * kw, N * Ho * Wo); the output is
``W (G, O/G, C/G*kh*kw) @ cols``. The backward pass is two more products
(dW = dY @ colsᵀ, dcols = Wᵀ @ dY) and a col2im that adds every column back
where it came from.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.algorithms.base import ConvAlgorithm, window


class Im2col(ConvAlgorithm):
    name = "im2col"

    def _forward(self, xp, w, geom):
        n, g = geom.batch, geom.groups
        kh, kw = geom.kernel
        ho, wo = geom.out
        cg = geom.in_channels // g
        xg = xp.reshape(n, g, cg, *geom.padded)
        cols = np.empty((g, cg, kh, kw, n, ho, wo), dtype=xp.dtype)
        for i in range(kh):
            for j in range(kw):
                cols[:, :, i, j] = window(xg, i, j, geom).transpose(1, 2, 0, 3, 4)  # (G, C/G, N, Ho, Wo)
        cols = cols.reshape(g, cg * kh * kw, n * ho * wo)  # (G, K, N*L)
        wmat = w.reshape(g, -1, cg * kh * kw)  # (G, O/G, K)
        y = np.matmul(wmat, cols)  # (G, O/G, N*L)
        y = y.reshape(g, -1, n, ho, wo).transpose(2, 0, 1, 3, 4).reshape(n, geom.out_channels, ho, wo)
        return np.ascontiguousarray(y), (cols, wmat, xp.dtype)

    def _backward(self, dy, cache, geom, need_dx=True):
        cols, wmat, dtype = cache
        n, g = geom.batch, geom.groups
        kh, kw = geom.kernel
        ho, wo = geom.out
        cg = geom.in_channels // g
        dymat = dy.reshape(n, g, -1, ho * wo).transpose(1, 2, 0, 3).reshape(g, -1, n * ho * wo)  # (G, O/G, N*L)
        dw = np.matmul(dymat, cols.transpose(0, 2, 1))  # (G, O/G, K)
        dw = dw.reshape(geom.out_channels, cg, kh, kw)
        if not need_dx:
            return None, dw
        dcols = np.matmul(wmat.transpose(0, 2, 1), dymat).reshape(g, cg, kh, kw, n, ho, wo)
        dxg = np.zeros((n, g, cg, *geom.padded), dtype=dtype)
        for i in range(kh):  # col2im: add each column back onto the pixels it came from
            for j in range(kw):
                window(dxg, i, j, geom)[...] += dcols[:, :, i, j].transpose(2, 0, 1, 3, 4)
        return dxg.reshape(n, geom.in_channels, *geom.padded), dw
