"""cnnlab: a laboratory for convolutional neural networks on images.

Importing the package is cheap: torch and friends load only when a
sub-module that needs them is imported.

>>> import cnnlab
>>> cnnlab.__version__
'0.1.0'
"""

__version__ = "0.1.0"

from cnnlab.errors import CnnlabError  # noqa: E402  (tiny, no heavy imports)

__all__ = ["CnnlabError", "__version__"]
