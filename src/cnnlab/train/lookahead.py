"""Lookahead (Zhang et al. 2019): fast weights explore for ``k`` steps, slow weights follow.

Every ``k`` optimizer steps::

    slow <- slow + alpha * (fast - slow)
    fast <- slow

so the model carries the slow weights after each synchronisation. It wraps any optimizer from
the config (it acts on the weights after ``optimizer.step()``), costs two foreach ops every ``k``
steps and no host synchronisation. Only parameters are interpolated; batch-norm statistics
follow the fast weights.

>>> import torch
>>> from types import SimpleNamespace
>>> w = torch.nn.Parameter(torch.zeros(1))
>>> la = Lookahead(alpha=0.5, k=2)
>>> trainer = SimpleNamespace(model=torch.nn.ParameterList([w]))
>>> la.on_train_start(trainer)
>>> with torch.no_grad(): _ = w.fill_(1.0)
>>> la.on_step_end(trainer, None)     # step 1: nothing yet
>>> with torch.no_grad(): _ = w.fill_(3.0)
>>> la.on_step_end(trainer, None)     # step 2: slow = 0 + 0.5 * (3 - 0)
>>> w.item()
1.5
"""

from __future__ import annotations

from typing import Any

import torch

from cnnlab.train.callbacks import Callback


class Lookahead(Callback):
    def __init__(self, alpha: float = 0.5, k: int = 5) -> None:
        self.alpha, self.k = alpha, k
        self.slow: list[torch.Tensor] = []
        self.steps = 0

    def _params(self, model) -> list[torch.Tensor]:
        return [p for p in model.parameters() if p.is_floating_point() and p.requires_grad]

    def on_train_start(self, trainer) -> None:
        if not self.slow:  # a resumed run already loaded its slow weights
            self.slow = [p.detach().clone() for p in self._params(trainer.model)]

    @torch.no_grad()
    def on_step_end(self, trainer, metrics) -> None:
        self.steps += 1
        if self.steps % self.k:
            return
        fast = [p.detach() for p in self._params(trainer.model)]
        torch._foreach_lerp_(self.slow, fast, self.alpha)  # slow += alpha * (fast - slow)
        torch._foreach_copy_(fast, self.slow)

    def state_dict(self) -> dict[str, Any]:
        return {"slow": [s.cpu() for s in self.slow], "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.slow = [s.clone() for s in state["slow"]]
        self.steps = state["steps"]

