"""Sizes and padding of a convolution: ``output_size`` and friends.

The output width of a convolution is ``floor((W - F_eff + 2P) / S) + 1``
where ``F_eff = D * (F - 1) + 1`` is the kernel's extent after dilation:

>>> output_size(274, 3)             # 274x274 image, 3x3 kernel, stride 1, no padding
272
>>> output_size(8, 3, padding=1)    # 8 + 2*1 = 10 padded, 10 - 3 + 1 = 8
8
>>> output_size(32, 5, stride=2, padding=2)
16
>>> output_size(28, 3, padding="same")
28
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnlab.errors import CnnlabError

Pair = tuple[int, int]


def as_pair(value, name: str) -> Pair:
    """``3`` -> ``(3, 3)``; ``(3, 5)`` stays; anything else is an error naming ``name``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise CnnlabError(f"{name} must be an int or a pair of ints, got {value!r}")


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """(before, after) zeros that keep a stride-1 output the size of the input.

    The extra zero of an even kernel goes after (bottom/right), as in PyTorch.

    >>> same_padding(3), same_padding(4), same_padding(3, dilation=2)
    ((1, 1), (1, 2), (2, 2))
    """
    total = dilation * (kernel - 1)
    return (total // 2, total - total // 2)


def resolve_padding(padding, kernel: Pair, dilation: Pair, stride: Pair) -> tuple[tuple[int, int], tuple[int, int]]:
    """Padding as ``((top, bottom), (left, right))`` from an int, a pair, ``'same'`` or ``'valid'``.

    >>> resolve_padding("same", (3, 4), (1, 1), (1, 1))
    ((1, 1), (1, 2))
    >>> resolve_padding(2, (3, 3), (1, 1), (1, 1))
    ((2, 2), (2, 2))
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride != (1, 1):
                raise CnnlabError(
                    f"padding='same' needs stride 1 (got stride {stride}); give the padding as numbers instead"
                )
            return (same_padding(kernel[0], dilation[0]), same_padding(kernel[1], dilation[1]))
        raise CnnlabError(f"padding must be an int, a pair, 'same' or 'valid', got '{padding}'")
    ph, pw = as_pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise CnnlabError(f"padding must be >= 0, got {padding!r}")
    return ((ph, ph), (pw, pw))


def output_size(size: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1) -> int:
    """``floor((W - F_eff + 2P) / S) + 1`` for one axis; ``padding`` may be an int, 'same' or 'valid'.

    Raises :class:`~cnnlab.errors.CnnlabError` if the (dilated) kernel is larger than the padded input.
    """
    for name, value, low in (("size", size, 1), ("kernel", kernel, 1), ("stride", stride, 1), ("dilation", dilation, 1)):
        if not isinstance(value, int) or value < low:
            raise CnnlabError(f"{name} must be an integer >= {low}, got {value!r}")
    (before, after), _ = resolve_padding(padding, (kernel, 1), (dilation, 1), (stride, 1))
    padded = size + before + after
    extent = dilation * (kernel - 1) + 1
    if extent > padded:
        raise CnnlabError(
            f"kernel {kernel} (extent {extent} with dilation {dilation}) does not fit an input of size {size} "
            f"padded to {padded}; use a smaller kernel or more padding"
        )
    return (padded - extent) // stride + 1


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
