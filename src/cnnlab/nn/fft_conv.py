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
from cnnlab.geometry import next_fast_size, resolve_padding


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
    full_h, full_w = hp - eh + 1, wp - ew + 1  # stride-1 output size
    (th_, tw_), (bh, bw) = choose_tiles(n, c, o, groups, (hp, wp), (eh, ew))
    nh, nw = -(-full_h // bh), -(-full_w // bw)  # tiles per axis
    extra_h, extra_w = (nh - 1) * bh + th_ - hp, (nw - 1) * bw + tw_ - wp
    if extra_h > 0 or extra_w > 0:  # zeros so the last tiles are whole
        x = F.pad(x, (0, max(0, extra_w), 0, max(0, extra_h)))
    # overlap-save: tiles of th_ x tw_ pixels every bh x bw pixels; each gives bh x bw valid outputs
    tiles = x.unfold(2, th_, bh).unfold(3, tw_, bw)  # (N, C, nh, nw, th_, tw_)
    tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(n * nh * nw, groups, cg, th_, tw_)
    xf = torch.fft.rfft2(tiles, s=(th_, tw_))  # (M, G, C/G, th_, tw_//2+1), M = N * tiles
    kf = torch.fft.rfft2(weight.reshape(groups, o // groups, cg, eh, ew), s=(th_, tw_))  # once per call
    yf = spectral_channel_sum(xf, kf.conj())  # (M, G, O/G, th_, tw_//2+1)
    y = torch.fft.irfft2(yf, s=(th_, tw_))[..., :bh, :bw]  # valid part of each tile
    y = y.reshape(n, nh, nw, o, bh, bw).permute(0, 3, 1, 4, 2, 5).reshape(n, o, nh * bh, nw * bw)
    y = y[:, :, : full_h : sh, : full_w : sw]
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y.contiguous()


def choose_tiles(n, c, o, groups, padded, extent):
    """FFT tile sizes (th, tw) and output block sizes (bh, bw) for overlap-save.

    One transform of the whole padded image needs O·C/G kernel transforms at
    the image's size; tiles a few times the kernel extent make those cheap and
    the per-frequency channel products bigger. The choice minimises a flop
    estimate over fast FFT sizes (one tile covering everything is a candidate).
    """
    import math

    best = None
    options = []
    for axis in (0, 1):
        sizes, t = [], next_fast_size(max(extent[axis], 8))
        limit = next_fast_size(padded[axis])
        while t < limit:
            if t - extent[axis] + 1 >= max(1, extent[axis] // 2):
                sizes.append(t)
            t = next_fast_size(t + 1)
        options.append(sizes + [limit])
    for th in options[0]:
        for tw in options[1]:
            bh, bw = th - extent[0] + 1, tw - extent[1] + 1
            full_h, full_w = padded[0] - extent[0] + 1, padded[1] - extent[1] + 1
            tiles = n * -(-full_h // bh) * -(-full_w // bw)
            area = th * tw
            fft = 2.5 * area * math.log2(area)
            cost = tiles * (c + o) * fft + o * (c // groups) * fft + tiles * o * (c // groups) * area * 4
            if best is None or cost < best[0]:
                best = (cost, (th, tw), (bh, bw))
    return best[1], best[2]


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
        return resolve_padding(self.padding, self.kernel_size, self.dilation, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise CnnlabError(
                f"FFTConv2d expects input (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        return fft_conv2d(x, self.weight, self.bias, self.stride, self._resolved_padding(), self.dilation,
                          self.groups)
