"""Sizes and padding of a convolution, shared by ``cnnlab.nn`` (torch) and ``cnnlab.scratch`` (NumPy).

Plain integer arithmetic with no dependencies, so the teaching code in
``scratch/`` and the torch layers in ``nn/`` use the same rules without either
importing the other.

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


def strided_same_padding(kernel: int, stride: int) -> int:
    """Symmetric zeros for a strided conv's "same": an odd kernel then gives ``ceil(size / stride)``.

    torch refuses ``padding='same'`` with a stride; this is timm's rule, ``(stride - 1 + kernel - 1) // 2``.

    >>> strided_same_padding(3, 2), strided_same_padding(3, 1), output_size(7, 3, 2, strided_same_padding(3, 2))
    (1, 1, 4)
    """
    return (stride - 1 + kernel - 1) // 2


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


def next_fast_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (sizes the FFT computes fastest).

    >>> [next_fast_size(n) for n in (7, 17, 30, 31, 257)]
    [8, 18, 30, 32, 270]
    """
    best = 1 << max(0, (n - 1).bit_length())  # a power of two always works
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best
