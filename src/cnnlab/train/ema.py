"""An exponential moving average (EMA) of the weights, tested in place of the last weights.

After every ``every`` optimizer steps the average moves toward the live weights::

    d_t   = min(decay, (1 + t) / (10 + t))      # t = EMA updates so far (warm-up, as in timm/TF)
    ema  <- d_t * ema + (1 - d_t) * weights

The warm-up matters for short runs: with a fixed decay of 0.99 the random initial weights would
still hold 0.99**234 = 9% of the average after MNIST's 234 steps. Batch-norm buffers are not
averaged: the live running statistics are kept (as ``torch.optim.swa_utils.AveragedModel`` with
``use_buffers=False``). At the end of the last epoch (before any end-of-epoch probe sees the
model) the averaged weights are copied into the model, so the test, ``final.pt`` and ``cnnlab
eval`` all use them. Updates are device ops: no host synchronisation per step.

>>> import torch
>>> from types import SimpleNamespace
>>> w = torch.nn.Parameter(torch.zeros(1))
>>> ema = WeightEMA(decay=0.5)
>>> trainer = SimpleNamespace(model=torch.nn.ParameterList([w]))
>>> ema.on_train_start(trainer)
>>> with torch.no_grad(): _ = w.fill_(1.0)
>>> ema.on_step_end(trainer, None)   # d_0 = min(0.5, 1/10) = 0.1: ema = 0.1*0 + 0.9*1
>>> round(ema.shadow[0].item(), 4)
0.9
"""

from __future__ import annotations

from typing import Any

import torch

from cnnlab.train.callbacks import Callback


class WeightEMA(Callback):
    """Keeps ``shadow``, the EMA of every floating-point parameter; swaps it in at the end of training."""

    def __init__(self, decay: float, every: int = 1) -> None:
        self.decay, self.every = decay, every
        self.shadow: list[torch.Tensor] = []
        self.updates = 0  # EMA updates so far
        self.steps = 0  # optimizer steps seen
        self.applied = False
        self.raw: list[torch.Tensor] | None = None  # the live weights the average replaced (to continue training)

    def _params(self, model) -> list[torch.Tensor]:
        return [p for p in model.parameters() if p.is_floating_point()]

    def on_train_start(self, trainer) -> None:
        if not self.shadow:  # a resumed run already loaded its shadow
            self.shadow = [p.detach().clone() for p in self._params(trainer.model)]
        elif self.applied and self.raw is not None:  # a finished run resumed for more epochs: train on from
            with torch.no_grad():                    # the live weights, not from their average
                for p, r in zip(self._params(trainer.model), self.raw):
                    p.copy_(r)
            self.applied, self.raw = False, None

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def on_step_end(self, trainer, metrics) -> None:
        self.steps += 1
        if self.steps % self.every:
            return
        weight = 1.0 - self.current_decay()  # ema + weight * (p - ema)
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self._params(trainer.model)], weight)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model) -> None:
        """Overwrite the model's parameters with the averaged ones (the live ones are kept in ``raw``)."""
        self.raw = [p.detach().clone() for p in self._params(model)]
        for p, s in zip(self._params(model), self.shadow):
            p.copy_(s)

    def on_epoch_end(self, trainer, metrics: dict[str, Any]) -> None:
        if trainer.epoch >= trainer.cfg.train.epochs and not self.applied:
            self.copy_to(trainer.model)
            self.applied = True

    def on_train_end(self, trainer) -> None:
        # Early stopping or a target reached: the last weights are tested, so average those too.
        if not self.applied and trainer.stop_reason in ("completed", "early_stopping", "target_reached"):
            self.copy_to(trainer.model)
            self.applied = True

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": [s.cpu() for s in self.shadow], "updates": self.updates, "steps": self.steps,
                "applied": self.applied, "raw": None if self.raw is None else [r.cpu() for r in self.raw]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shadow = [s.clone() for s in state["shadow"]]
        self.updates, self.steps, self.applied = state["updates"], state["steps"], state["applied"]
        raw = state.get("raw")
        self.raw = None if raw is None else [r.clone() for r in raw]

    @property
    def tested_weights(self) -> str | None:
        """What the test scores when the average was swapped in (``"ema"``), else None."""
        return "ema" if self.applied else None
