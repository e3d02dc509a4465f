"""The geometry of one convolution call: :func:`conv_geometry` checks an input against a
weight and works out every size (:class:`ConvGeometry`) the scratch algorithms need.

The per-axis rules (``output_size``, ``resolve_padding``, ...) live in :mod:`cnnlab.geometry`,
shared with the torch layers in ``cnnlab.nn``.

>>> g = conv_geometry((2, 3, 8, 8), (4, 3, 3, 3), padding=1)
>>> g.padded, g.out, g.extent
((10, 10), (8, 8), (3, 3))
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.errors import CnnlabError
from cnnlab.geometry import Pair, as_pair, resolve_padding


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about one convolution call except the numbers in the arrays.

    ``padded`` is the (H, W) after zero padding; ``out`` the output (H, W).
    """

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    kernel: Pair
    stride: Pair
    dilation: Pair
    padding: tuple[tuple[int, int], tuple[int, int]]
    padded: Pair
    out: Pair

    @property
    def extent(self) -> Pair:
        """Kernel extent after dilation: ``D * (F - 1) + 1`` per axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))  # type: ignore[return-value]

    @property
    def full(self) -> Pair:
        """Stride-1 output size on the padded input (before striding)."""
        return tuple(p - e + 1 for p, e in zip(self.padded, self.extent))  # type: ignore[return-value]


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups: int = 1) -> ConvGeometry:
    """Check an input (N, C, H, W) against a weight (O, C/groups, kh, kw) and work out every size.

    Every mismatch is an error naming the shapes received and the shape expected.
    """
    if len(x_shape) != 4:
        raise CnnlabError(
            f"expected input of shape (N, C, H, W), got {tuple(x_shape)}; add the missing batch/channel axes"
        )
    if len(w_shape) != 4:
        raise CnnlabError(f"expected weight of shape (out_channels, in_channels/groups, kh, kw), got {tuple(w_shape)}")
    n, c, h, w = x_shape
    o, cg, kh, kw = w_shape
    if not isinstance(groups, int) or groups < 1:
        raise CnnlabError(f"groups must be a positive integer, got {groups!r}")
    if c % groups or o % groups:
        raise CnnlabError(
            f"in_channels={c} and out_channels={o} must both be divisible by groups={groups}"
        )
    if cg != c // groups:
        raise CnnlabError(
            f"weight {tuple(w_shape)} expects {cg * groups} input channels (groups={groups}) "
            f"but the input {tuple(x_shape)} has {c}"
        )
    stride2, dil2 = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    if min(stride2) < 1 or min(dil2) < 1:
        raise CnnlabError(f"stride and dilation must be >= 1, got stride={stride!r}, dilation={dilation!r}")
    pad = resolve_padding(padding, (kh, kw), dil2, stride2)
    padded = (h + sum(pad[0]), w + sum(pad[1]))
    extent = (dil2[0] * (kh - 1) + 1, dil2[1] * (kw - 1) + 1)
    if extent[0] > padded[0] or extent[1] > padded[1]:
        raise CnnlabError(
            f"kernel {kh}x{kw} (extent {extent[0]}x{extent[1]} with dilation {dil2}) does not fit input "
            f"{tuple(x_shape)} padded to {padded[0]}x{padded[1]}; use a smaller kernel or more padding"
        )
    out = ((padded[0] - extent[0]) // stride2[0] + 1, (padded[1] - extent[1]) // stride2[1] + 1)
    return ConvGeometry(n, c, o, groups, (kh, kw), stride2, dil2, pad, padded, out)
