"""Interchangeable convolution algorithms, all computing the same cross-correlation.

>>> sorted(ALGORITHMS)
['direct', 'fft', 'im2col', 'winograd', 'winograd4']
>>> get_algorithm("im2col").name
'im2col'
"""

from __future__ import annotations

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.scratch.algorithms.base import ConvAlgorithm, ConvContext
from cnnlab.scratch.algorithms.direct import Direct
from cnnlab.scratch.algorithms.fft import FFT
from cnnlab.scratch.algorithms.im2col import Im2col
from cnnlab.scratch.algorithms.winograd import Winograd

ALGORITHMS = {
    "direct": Direct,
    "im2col": Im2col,
    "fft": FFT,
    "winograd": lambda: Winograd(2),
    "winograd4": lambda: Winograd(4),
}


def get_algorithm(name: str) -> ConvAlgorithm:
    """A fresh algorithm object for ``name`` (``direct``, ``im2col``, ``fft``, ``winograd``, ``winograd4``)."""
    if name not in ALGORITHMS:
        raise CnnlabError(f"unknown convolution algorithm '{name}'; {did_you_mean(name, ALGORITHMS)}")
    return ALGORITHMS[name]()


__all__ = ["ALGORITHMS", "ConvAlgorithm", "ConvContext", "get_algorithm"]
