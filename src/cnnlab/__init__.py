"""cnnlab: a laboratory for convolutional neural networks on images.

Importing the package is cheap: torch and friends load only when a function that needs
them is called. The Python API (:mod:`cnnlab.api`) is reached from here:

>>> import cnnlab
>>> cnnlab.__version__
'0.1.0'
>>> sorted(name for name in cnnlab.__all__ if not name.startswith("_"))[:4]
['CnnlabError', 'OnnxRun', 'Run', 'ablate']

``cnnlab.train(...)``, ``cnnlab.load(...)``, ``cnnlab.sweep(...)``, ``cnnlab.ablate(...)``,
``cnnlab.cv(...)`` and ``cnnlab.ensemble(...)``: see :mod:`cnnlab.api`.
"""

from cnnlab.errors import CnnlabError  # tiny, no heavy imports
from cnnlab.version import __version__

# why lazy: names served by cnnlab.api are imported on first use, so `import cnnlab` loads no torch. `train` is not here:
# cnnlab.train is the training package, made callable (cnnlab/train/__init__.py) so cnnlab.train(...) works.
_API = ("load", "sweep", "ablate", "cv", "ensemble", "Run", "OnnxRun")


def __getattr__(name: str):
    if name in _API:
        import cnnlab.api

        return getattr(cnnlab.api, name)
    if name == "train":
        import cnnlab.train

        return cnnlab.train
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


__all__ = ["CnnlabError", "__version__", "train", *_API]
