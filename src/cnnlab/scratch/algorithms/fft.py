"""FFT convolution: pointwise multiplication in the frequency domain.

Cross-correlation is ``y = irfft2(rfft2(x) * conj(rfft2(k)))``: with an FFT
size at least the padded input, the first (Hp - kh + 1) rows of the circular
result never wrap, so they are exactly the valid correlation. Details:

- sizes are rounded up to "fast" lengths (products of 2, 3 and 5);
- the filters are transformed once per call and reused for the whole batch;
- the sum over input channels is a matrix product per frequency
  ``(N, C/G) @ (C/G, O/G)`` in the frequency domain;
- dilation is a kernel with zeros between taps; stride keeps every S-th
  row/column of the stride-1 result (the work is that of stride 1).

The backward pass uses the same transforms: dX is a (full) convolution of dY
with the kernel and dW the correlation of X with dY, both as products of
spectra. Rounding is that of the FFT, ~1e-6 relative in float32 (looser than
direct), ~1e-12 in float64.
"""

from __future__ import annotations

import numpy as np

from cnnlab.geometry import next_fast_size
from cnnlab.scratch.algorithms.base import ConvAlgorithm


def dilate(w: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    """A kernel with (dilation - 1) zeros between taps: (..., kh, kw) -> (..., D(kh-1)+1, D(kw-1)+1)."""
    dh, dw = dilation
    if (dh, dw) == (1, 1):
        return w
    kh, kw = w.shape[-2:]
    out = np.zeros(w.shape[:-2] + (dh * (kh - 1) + 1, dw * (kw - 1) + 1), dtype=w.dtype)
    out[..., ::dh, ::dw] = w
    return out


def _spectrum_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-group, per-frequency matrix product of spectra.

    a (N|O, G, X, P, Q) and b (G, X, Y, P, Q) -> (N, G, Y, P, Q): sum over X.
    """
    n, g, x, p, q = a.shape
    a2 = a.reshape(n, g, x, p * q).transpose(1, 3, 0, 2)  # (G, F, N, X)
    b2 = b.reshape(g, x, -1, p * q).transpose(0, 3, 1, 2)  # (G, F, X, Y)
    out = np.matmul(a2, b2)  # (G, F, N, Y)
    return out.transpose(2, 0, 3, 1).reshape(n, g, -1, p, q)


class FFT(ConvAlgorithm):
    name = "fft"

    def _forward(self, xp, w, geom):
        n, g = geom.batch, geom.groups
        size = (next_fast_size(geom.padded[0]), next_fast_size(geom.padded[1]))
        xf = np.fft.rfft2(xp.reshape(n, g, -1, *geom.padded), s=size)  # (N, G, C/G, P, Q//2+1)
        wd = dilate(w, geom.dilation).reshape(g, -1, w.shape[1], *geom.extent)  # (G, O/G, C/G, eh, ew)
        kf = np.fft.rfft2(wd, s=size)  # filters transformed once for the batch
        yf = _spectrum_matmul(xf, np.conj(kf).transpose(0, 2, 1, 3, 4))  # sum over C/G: (N, G, O/G, P, Q')
        full = np.fft.irfft2(yf, s=size)[..., : geom.full[0], : geom.full[1]]  # stride-1 valid correlation
        (sh, sw), (ho, wo) = geom.stride, geom.out
        y = full[..., : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw]
        y = np.ascontiguousarray(y.reshape(n, geom.out_channels, ho, wo), dtype=np.result_type(xp, w))
        return y, (xf, kf, size, xp.dtype, w.shape)

    def _backward(self, dy, cache, geom, need_dx=True):
        xf, kf, size, dtype, w_shape = cache
        n, g = geom.batch, geom.groups
        (sh, sw), (ho, wo) = geom.stride, geom.out
        up = np.zeros((n, geom.out_channels) + geom.full, dtype=dtype)  # dY on the stride-1 grid
        up[..., : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw] = dy
        dyf = np.fft.rfft2(up.reshape(n, g, -1, *geom.full), s=size)  # (N, G, O/G, P, Q')
        dxf = _spectrum_matmul(dyf, kf)  # full convolution of dY with k, summed over O/G
        dxp = np.fft.irfft2(dxf, s=size)[..., : geom.padded[0], : geom.padded[1]]
        # correlation of X with dY, summed over the batch: (O/G as rows) (N) @ (N, C/G)
        dwf = _spectrum_matmul(np.conj(dyf).transpose(2, 1, 0, 3, 4), xf.transpose(1, 0, 2, 3, 4))
        dwd = np.fft.irfft2(dwf, s=size)[..., : geom.extent[0], : geom.extent[1]]  # (O/G, G, C/G, eh, ew)
        dw = dwd[..., :: geom.dilation[0], :: geom.dilation[1]].transpose(1, 0, 2, 3, 4).reshape(w_shape)
        dxp = dxp.reshape(n, geom.in_channels, *geom.padded)
        return np.ascontiguousarray(dxp, dtype=dtype), np.ascontiguousarray(dw, dtype=dtype)
