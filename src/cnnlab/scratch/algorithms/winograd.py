"""Winograd minimal filtering F(m×m, 3×3) (Lavin & Gray, 2015).

Each (m+2)×(m+2) input tile d and 3×3 filter g give an m×m output tile
``Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A``. The elementwise product is where the
multiplications are: (m+2)² per tile per channel pair instead of 9·m² for
direct, i.e. 16 vs 36 (2.25× fewer) for F(2×2, 3×3) and 36 vs 144 (4×) for
F(4×4, 3×3). The sum over input channels happens in the transformed domain as
one batched matrix product per tile position.

Backward is the transpose of the same linear maps: dV = Uᵀ(A dY Aᵀ),
dd = B dV Bᵀ (tiles overlap, so their gradients are added back), dU = sum over
tiles of (A dY Aᵀ) ⊙ V, dg = Gᵀ dU G.

Only 3×3 kernels. Stride S computes the stride-1 output and keeps every S-th
value; dilation D splits the input into D×D interleaved sub-grids, each an
ordinary 3×3 convolution.

>>> multiplication_ratio(2), multiplication_ratio(4)
(2.25, 4.0)
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.algorithms.base import ConvAlgorithm

_F2 = {
    "BT": [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    "G": [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
    "AT": [[1, 1, 1, 0], [0, 1, -1, -1]],
}
_F4 = {
    "BT": [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    "G": [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    "AT": [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
}


def transforms(m: int, dtype=np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Bᵀ, G, Aᵀ) for F(m×m, 3×3), m in {2, 4}."""
    table = {2: _F2, 4: _F4}[m]
    return tuple(np.asarray(table[k], dtype=dtype) for k in ("BT", "G", "AT"))  # type: ignore[return-value]


def multiplication_ratio(m: int) -> float:
    """Multiplications of direct over Winograd per output tile: 9 m² / (m + 2)²."""
    return 9 * m * m / (m + 2) ** 2


def multiplications(geom, m: int = 2) -> dict[str, int]:
    """Elementwise multiplications of one forward call: direct vs Winograd F(m×m, 3×3).

    Counts the products of the channel sum (filter and input transforms only
    add, or multiply by small constants, and are shared across channels).
    """
    pairs = geom.batch * geom.out_channels * (geom.in_channels // geom.groups)
    ho, wo = geom.out
    tiles = -(-ho // m) * -(-wo // m)
    return {"direct": pairs * 9 * ho * wo, "winograd": pairs * (m + 2) ** 2 * tiles}


def _apply(t: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left @ t @ right.T`` on the last two axes of a stack of small matrices (two BLAS calls)."""
    z = np.tensordot(t, right, axes=([t.ndim - 1], [1]))  # (..., r, j): t @ rightᵀ
    z = np.tensordot(z, left, axes=([z.ndim - 2], [1]))  # (..., j, i)
    return np.swapaxes(z, -1, -2)  # (..., i, j)


def _lincomb(coeffs, term):
    """sum_k coeffs[k] * term(k) over the non-zero coefficients (±1 without multiplying)."""
    out = None
    for k, coef in enumerate(coeffs):
        if coef == 0:
            continue
        t = term(k)
        if out is None:
            out = t.copy() if coef == 1 else (np.negative(t) if coef == -1 else t * t.dtype.type(coef))
        elif coef == 1:
            out += t
        elif coef == -1:
            out -= t
        else:
            out += t * t.dtype.type(coef)
    return out


def _row_gradient(dv, bt, i, m, tw, width):
    """Gradient of row-transform output i: (B dV)[i, k] scattered back over the columns."""
    a = bt.shape[0]
    out = np.zeros((dv.shape[0],) + dv.shape[3:6] + (width,), dtype=dv.dtype)  # (G, C/G, N, th, W')
    for k in range(a):
        col = _lincomb(bt[:, k], lambda j: dv[:, i, j])
        if col is not None:
            out[..., k : k + m * tw : m] += col
    return out


class Winograd(ConvAlgorithm):
    """F(m×m, 3×3); ``m=2`` by default, ``m=4`` does 4× fewer multiplications but rounds more."""

    name = "winograd"

    def __init__(self, m: int = 2) -> None:
        if m not in (2, 4):
            raise CnnlabError(f"Winograd tile size m must be 2 or 4, got {m!r}")
        self.m = m

    def unsupported(self, geom):
        if geom.kernel != (3, 3):
            return f"supports 3x3 kernels only, got {geom.kernel[0]}x{geom.kernel[1]}; use 'im2col' or 'fft'"
        return None

    # -- one stride-1, undilated 3x3 correlation on a padded grid -------------
    # The transforms act on whole slabs of the image at once: row r of every
    # tile is the strided slice x[..., r::m, :], so Bᵀ d B is a few additions
    # of such slices (the matrices hold 0, ±1 and small constants).
    def _tiles_forward(self, xp, u, g, dtype):
        """xp (N, C, Hp, Wp), u (G, a², O/G, C/G) -> y (N, O, Hp-2, Wp-2), cache."""
        m = self.m
        a = m + 2
        bt, _, at = transforms(m, np.float64)
        n, c, hp, wp = xp.shape
        ho, wo = hp - 2, wp - 2
        th, tw = -(-ho // m), -(-wo // m)
        xt = np.zeros((g, c // g, n, th * m + 2, tw * m + 2), dtype=dtype)  # channels first: (G, C/G, N, H', W')
        xt[..., :hp, :wp] = xp.reshape(n, g, c // g, hp, wp).transpose(1, 2, 0, 3, 4)
        rows = [_lincomb(bt[i], lambda r: xt[..., r : r + m * th : m, :]) for i in range(a)]  # Bᵀ d: (G, C/G, N, th, W')
        v = np.empty((g, a, a, c // g, n, th, tw), dtype=dtype)
        for i in range(a):
            for j in range(a):  # (Bᵀ d B)[i, j] for every tile at once
                v[:, i, j] = _lincomb(bt[j], lambda k: rows[i][..., k : k + m * tw : m])
        v = v.reshape(g, a * a, c // g, n * th * tw)
        mm = np.matmul(u, v).reshape(g, a, a, -1, n, th, tw)  # the multiplications: (G, a, a, O/G, N, th, tw)
        og = mm.shape[3]
        y = np.empty((n, g, og, th, m, tw, m), dtype=dtype)
        for p in range(m):  # Aᵀ M A
            z = [_lincomb(at[p], lambda i: mm[:, i, j]) for j in range(a)]  # (G, O/G, N, th, tw)
            for q in range(m):
                y[:, :, :, :, p, :, q] = _lincomb(at[q], lambda j: z[j]).transpose(2, 0, 1, 3, 4)
        y = y.reshape(n, g * og, th * m, tw * m)[:, :, :ho, :wo]
        return y, (v, (n, c, hp, wp, th, tw))

    def _tiles_backward(self, dy, u, cache, g, dtype):
        """dy (N, O, Ho, Wo) -> (dxp (N, C, Hp, Wp), du (G, a², O/G, C/G))."""
        m = self.m
        a = m + 2
        bt, _, at = transforms(m, np.float64)
        v, (n, c, hp, wp, th, tw) = cache
        o = dy.shape[1]
        dyt = np.zeros((g, o // g, n, th * m, tw * m), dtype=dtype)
        dyt[..., : hp - 2, : wp - 2] = dy.reshape(n, g, o // g, hp - 2, wp - 2).transpose(1, 2, 0, 3, 4)
        dyt = dyt.reshape(g, o // g, n, th, m, tw, m)
        dm = np.empty((g, a, a, o // g, n, th, tw), dtype=dtype)
        cols = [[_lincomb(at[:, j], lambda q: dyt[:, :, :, :, p, :, q]) for j in range(a)] for p in range(m)]
        for i in range(a):  # A dY Aᵀ
            for j in range(a):
                dm[:, i, j] = _lincomb(at[:, i], lambda p: cols[p][j])
        dm = dm.reshape(g, a * a, o // g, n * th * tw)
        du = np.matmul(dm, v.transpose(0, 1, 3, 2))  # (G, a², O/G, C/G)
        dv = np.matmul(u.transpose(0, 1, 3, 2), dm).reshape(g, a, a, c // g, n, th, tw)
        dxt = np.zeros((g, c // g, n, th * m + 2, tw * m + 2), dtype=dtype)
        for r in range(a):  # B dV Bᵀ, each tile's gradient added back where the tile came from
            row = _lincomb(bt[:, r], lambda i: _row_gradient(dv, bt, i, m, tw, dxt.shape[-1]))
            if row is not None:
                dxt[..., r : r + m * th : m, :] += row
        dxp = dxt[..., :hp, :wp].transpose(2, 0, 1, 3, 4).reshape(n, c, hp, wp)
        return dxp, du

    def _filters(self, w, g, dtype):
        _, gm, _ = transforms(self.m, dtype)
        o, cg = w.shape[:2]
        u = _apply(w.astype(dtype, copy=False), gm, gm)  # G g Gᵀ: (O, C/G, a, a)
        a = self.m + 2
        return u.reshape(g, o // g, cg, a * a).transpose(0, 3, 1, 2)  # (G, a², O/G, C/G)

    def _phases(self, geom):
        dh, dw = geom.dilation
        return [(p, q) for p in range(dh) for q in range(dw) if p < geom.full[0] and q < geom.full[1]]

    def _forward(self, xp, w, geom):
        dtype = np.result_type(xp, w)
        u = self._filters(w, geom.groups, dtype)
        (dh, dw), (sh, sw), (ho, wo) = geom.dilation, geom.stride, geom.out
        full = np.zeros((geom.batch, geom.out_channels) + geom.full, dtype=dtype)
        caches = []
        for p, q in self._phases(geom):  # dilation D: D*D interleaved ordinary 3x3 convolutions
            y, cache = self._tiles_forward(xp[:, :, p::dh, q::dw], u, geom.groups, dtype)
            full[:, :, p::dh, q::dw] = y
            caches.append(cache)
        y = full[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw]  # stride: keep every S-th
        return np.ascontiguousarray(y), (u, caches, dtype, w.shape)

    def _backward(self, dy, cache, geom, need_dx=True):
        u, caches, dtype, w_shape = cache
        (dh, dw), (sh, sw), (ho, wo) = geom.dilation, geom.stride, geom.out
        full = np.zeros((geom.batch, geom.out_channels) + geom.full, dtype=dtype)
        full[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw] = dy
        dxp = np.zeros((geom.batch, geom.in_channels) + geom.padded, dtype=dtype)
        du = np.zeros_like(u)
        for (p, q), c in zip(self._phases(geom), caches):
            dxs, dus = self._tiles_backward(full[:, :, p::dh, q::dw], u, c, geom.groups, dtype)
            dxp[:, :, p::dh, q::dw] += dxs
            du += dus
        a = self.m + 2
        _, gm, _ = transforms(self.m, dtype)
        g = geom.groups
        du = du.transpose(0, 2, 3, 1).reshape(w_shape[0], w_shape[1], a, a)  # (O, C/G, a, a)
        dw_ = _apply(du, gm.T, gm.T)  # Gᵀ dU G: (O, C/G, 3, 3)
        return dxp, dw_
