"""Training: the loop, optimizers and schedules, callbacks, checkpoints, distributed runs.

This package is also the API's ``cnnlab.train(...)``: a function of that name on the top-level
package would be replaced by this package the first time ``cnnlab.train.<module>`` is imported
(Python sets the attribute on import), so the package itself is callable and forwards the call
to :func:`cnnlab.api.train`. Importing it stays light (no torch).

>>> import cnnlab
>>> callable(cnnlab.train)
True
"""

import sys
import types


class _CallableTrainPackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from cnnlab.api import train  # why lazy: the package made callable reaches the API only when called (import cnnlab.train stays light)

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableTrainPackage
