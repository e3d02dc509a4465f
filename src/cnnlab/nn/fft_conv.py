"""``FFTConv2d``: a drop-in ``nn.Conv2d`` that convolves by pointwise products of spectra.

Same constructor, parameters and output as ``nn.Conv2d`` (stride, padding as
int/pair/'same'/'valid', dilation, groups, bias; zero padding only); the
backward pass is PyTorch autograd through ``torch.fft``. Its cost barely
grows with the kernel size, so it wins for large kernels on large images.

>>> import torch
>>> conv = FFTConv2d(3, 8, 7, padding="same")
>>> ref = torch.nn.functional.conv2d
>>> x = torch.randn(2, 3, 20, 20)
>>> torch.allclose(conv(x), ref(x, conv.weight, conv.bias, padding="same"), atol=1e-4)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import CnnlabError


def fast_fft_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (the scratch FFT uses the same rule)."""
    from cnnlab.scratch.algorithms.fft import next_fast_size

    return next_fast_size(n)


def fft_conv2d(x, weight, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Cross-correlation of x (N, C, H, W) with weight (O, C/groups, kh, kw) via real FFTs.

    ``padding`` is ((top, bottom), (left, right)) zeros; the result equals
    ``F.conv2d`` up to FFT rounding.
    """
    (pt, pb), (pl, pr) = padding
    if pt or pb or pl or pr:
        x = F.pad(x, (pl, pr, pt, pb))  # (N, C, Hp, Wp)
    n, c, hp, wp = x.shape
    o, cg, kh, kw = weight.shape
    (sh, sw), (dh, dw) = stride, dilation
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if eh > hp or ew > wp:
        raise CnnlabError(
            f"kernel {kh}x{kw} (extent {eh}x{ew}) does not fit input {tuple(x.shape)} after padding; "
            "use a smaller kernel or more padding"
        )
    if (dh, dw) != (1, 1):  # a dilated kernel is the kernel with zeros between taps
        dilated = weight.new_zeros(o, cg, eh, ew)
        dilated[:, :, ::dh, ::dw] = weight
        weight = dilated
    size = (fast_fft_size(hp), fast_fft_size(wp))
    xf = torch.fft.rfft2(x.reshape(n, groups, cg, hp, wp), s=size)  # (N, G, C/G, P, Q')
    kf = torch.fft.rfft2(weight.reshape(groups, o // groups, cg, eh, ew), s=size)  # (G, O/G, C/G, P, Q')
    yf = spectral_channel_sum(xf, kf.conj())  # (N, G, O/G, P, Q')
    y = torch.fft.irfft2(yf, s=size)[..., : hp - eh + 1 : sh, : wp - ew + 1 : sw]
    y = y.reshape(n, o, y.shape[-2], y.shape[-1])
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y.contiguous()


def spectral_channel_sum(xf: torch.Tensor, kf: torch.Tensor) -> torch.Tensor:
    """yf[n, g, o] = sum_c xf[n, g, c] * kf[g, o, c] at every frequency.

    xf (N, G, C/G, P, Q'), kf (G, O/G, C/G, P, Q') -> (N, G, O/G, P, Q'). With
    big channel matrices this is one matrix product per frequency; with small
    ones (few images or channels) thousands of tiny products cost more than
    the arithmetic, so the sum runs as C/G elementwise multiply-adds instead.
    """
    n, g, cg = xf.shape[:3]
    og = kf.shape[1]
    if n * cg * og >= 4096:
        a = xf.permute(1, 3, 4, 0, 2)  # (G, P, Q', N, C/G)
        b = kf.permute(0, 3, 4, 2, 1)  # (G, P, Q', C/G, O/G)
        return torch.matmul(a, b).permute(3, 0, 4, 1, 2)
    out = xf[:, :, :1] * kf[:, :, 0].unsqueeze(0)  # (N, G, O/G, P, Q')
    for c in range(1, cg):
        out = out + xf[:, :, c : c + 1] * kf[:, :, c].unsqueeze(0)
    return out


class FFTConv2d(nn.Conv2d):
    """``nn.Conv2d`` computed with FFTs; swap it in anywhere (``conv_type: fft``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros":
            raise CnnlabError(f"FFTConv2d supports padding_mode='zeros' only, got '{self.padding_mode}'")

    def _resolved_padding(self) -> tuple[tuple[int, int], tuple[int, int]]:
        from cnnlab.scratch.geometry import resolve_padding

        return resolve_padding(self.padding, self.kernel_size, self.dilation, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise CnnlabError(
                f"FFTConv2d expects input (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        return fft_conv2d(x, self.weight, self.bias, self.stride, self._resolved_padding(), self.dilation,
                          self.groups)
