"""The reference algorithm: a plain sum over kernel offsets.

For each offset (i, j) of the kernel, multiply the shifted input window by
that weight (a channel mix) and add it into the output. No BLAS, no tricks:
``np.einsum`` without ``optimize``. Slow and obviously right; every other
algorithm is tested against it.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.algorithms.base import ConvAlgorithm, window


class Direct(ConvAlgorithm):
    name = "direct"

    def _forward(self, xp, w, geom):
        n, g = geom.batch, geom.groups
        kh, kw = geom.kernel
        xg = xp.reshape(n, g, -1, *geom.padded)  # (N, G, C/G, Hp, Wp)
        wg = w.reshape(g, -1, w.shape[1], kh, kw)  # (G, O/G, C/G, kh, kw)
        y = np.zeros((n, g, wg.shape[1], *geom.out), dtype=np.result_type(xp, w))  # (N, G, O/G, Ho, Wo)
        for i in range(kh):
            for j in range(kw):
                y += np.einsum("ngchw,goc->ngohw", window(xg, i, j, geom), wg[..., i, j])
        return y.reshape(n, geom.out_channels, *geom.out), (xg, wg)

    def _backward(self, dy, cache, geom, need_dx=True):
        xg, wg = cache
        n, g = geom.batch, geom.groups
        dyg = dy.reshape(n, g, -1, *geom.out)  # (N, G, O/G, Ho, Wo)
        dxg = np.zeros_like(xg)
        dwg = np.zeros_like(wg)
        for i in range(geom.kernel[0]):
            for j in range(geom.kernel[1]):
                # every output position where weight (i, j) was applied adds to its gradient
                dwg[..., i, j] = np.einsum("ngohw,ngchw->goc", dyg, window(xg, i, j, geom))
                window(dxg, i, j, geom)[...] += np.einsum("ngohw,goc->ngchw", dyg, wg[..., i, j])
        return dxg.reshape(n, geom.in_channels, *geom.padded), dwg.reshape(geom.out_channels, -1, *geom.kernel)
