"""How many threads NumPy's BLAS (OpenBLAS) uses, set at run time.

On a CPU shared with other jobs, a multi-threaded OpenBLAS can spin-wait for
cores it does not get and run several times slower than one thread; the
scratch commands therefore take ``--threads``. Only OpenBLAS (what NumPy's
wheels ship) is handled; elsewhere the calls do nothing and return None.

>>> with blas_threads(1):
...     pass
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os

from cnnlab.errors import CnnlabError

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
            "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads64_",
            "openblas_get_num_threads")


def _openblas():
    import numpy

    root = os.path.dirname(os.path.dirname(numpy.__file__))
    for path in sorted(glob.glob(os.path.join(root, "numpy.libs", "*openblas*.so*"))):
        try:
            return ctypes.CDLL(path)  # already loaded by numpy: the same library instance
        except OSError:
            continue
    return None


def _function(lib, names):
    for name in names:
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            return fn
    return None


def get_blas_threads() -> int | None:
    """Threads OpenBLAS uses now (None if it cannot be told)."""
    fn = _function(_openblas(), _GETTERS)
    return int(fn()) if fn is not None else None


def set_blas_threads(n: int) -> int | None:
    """Use ``n`` BLAS threads; returns the previous count (None if not OpenBLAS)."""
    if not isinstance(n, int) or n < 1:
        raise CnnlabError(f"threads must be a positive integer, got {n!r}")
    lib = _openblas()
    setter, before = _function(lib, _SETTERS), get_blas_threads()
    if setter is None:
        return None
    setter(ctypes.c_int(n))
    return before


@contextlib.contextmanager
def blas_threads(n: int | None):
    """``with blas_threads(1): ...`` then restore; ``None`` leaves the setting alone."""
    before = set_blas_threads(n) if n is not None else None
    try:
        yield
    finally:
        if before is not None:
            set_blas_threads(before)
