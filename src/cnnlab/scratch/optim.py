"""SGD with momentum and Adam, updating :class:`~cnnlab.scratch.module.Param` values in place.

Both follow PyTorch's update rules exactly (tests compare them step by step).

>>> import numpy as np
>>> from cnnlab.scratch.module import Param
>>> p = Param(np.array([1.0])); p.grad = np.array([0.5])
>>> SGD([p], lr=0.1).step(); p.value
array([0.95])
"""

from __future__ import annotations

import numpy as np

from cnnlab.errors import CnnlabError


class Optimizer:
    def __init__(self, params, lr: float):
        self.params = list(params)
        if not self.params:
            raise CnnlabError("the optimizer got no parameters; pass model.parameters()")
        if lr <= 0:
            raise CnnlabError(f"learning rate must be > 0, got {lr}")
        self.lr = lr

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """v = momentum·v + (g + wd·w); w -= lr·v (``nesterov``: w -= lr·(g + momentum·v))."""

    def __init__(self, params, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov
        self.velocity = [None] * len(self.params)

    def step(self):
        for i, p in enumerate(self.params):
            g = p.grad + self.weight_decay * p.value if self.weight_decay else p.grad
            if self.momentum:
                v = g.copy() if self.velocity[i] is None else self.momentum * self.velocity[i] + g
                self.velocity[i] = v
                g = g + self.momentum * v if self.nesterov else v
            p.value -= (self.lr * g).astype(p.value.dtype, copy=False)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; ``weight_decay`` is L2 added to the gradient."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.m = [np.zeros_like(p.value) for p in self.params]
        self.v = [np.zeros_like(p.value) for p in self.params]
        self.t = 0

    def step(self):
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad + self.weight_decay * p.value if self.weight_decay else p.grad
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p.value -= (self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)).astype(p.value.dtype, copy=False)
