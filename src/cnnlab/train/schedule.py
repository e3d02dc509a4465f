"""Learning-rate schedules as explicit functions of progress.

Each schedule computes the rate from the step count (and, for plateau, a few
numbers of state), so its whole state is a small dict of numbers that a
checkpoint stores exactly; resuming gives the same rates to the last bit.

Stepping: one-cycle, cosine and constant move per batch; step and plateau
per epoch (plateau from the monitored validation metric, compared by a
:class:`~cnnlab.train.monitor.Monitor` whose ``min_delta`` is the schedule's
``threshold``).

>>> from cnnlab.config import ScheduleConfig
>>> s = LRSchedule(ScheduleConfig(name="onecycle", warmup_fraction=0.5), base_lr=0.1, total_steps=100, steps_per_epoch=10)
>>> round(s.lr_at(0), 4), round(s.lr_at(50), 4), s.lr_at(100) < 1e-4
(0.004, 0.1, True)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from cnnlab.config import ScheduleConfig
from cnnlab.train.monitor import Monitor


class LRSchedule:
    """Learning rate as a function of the global step (plus plateau state).

    ``monitor`` names the metric a plateau schedule watches and its direction (required for
    ``plateau``, unused by the others); an improvement must beat the best by more than
    ``cfg.threshold``.
    """

    def __init__(self, cfg: ScheduleConfig, base_lr: float, total_steps: int, steps_per_epoch: int,
                 monitor: Optional[Monitor] = None) -> None:
        self.cfg = cfg
        self.base_lr = base_lr
        self.total_steps = max(1, total_steps)
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.monitor: Optional[Monitor] = None
        if cfg.name == "plateau":
            if monitor is None:
                raise ValueError("a plateau schedule needs a monitor: LRSchedule(..., monitor=Monitor(...))")
            self.monitor = dataclasses.replace(monitor, min_delta=cfg.threshold)
        self.plateau_scale = 1.0  # plateau: product of the cuts so far
        self.plateau_best: float | None = None  # best value of the monitored metric, in its own units
        self.plateau_bad_epochs = 0

    def lr_at(self, step: int) -> float:
        """The learning rate used for optimizer step number ``step`` (0-based)."""
        c = self.cfg
        if c.name == "onecycle":
            peak = c.peak_lr or self.base_lr
            start, end = peak / c.initial_div, peak / c.final_div
            warm = max(1, int(round(c.warmup_fraction * self.total_steps)))
            if step < warm:  # cosine rise from start to peak
                return _cos_interp(start, peak, step / warm)
            return _cos_interp(peak, end, min(1.0, (step - warm) / max(1, self.total_steps - warm)))
        if c.name == "cosine":
            warm = int(round(c.warmup_epochs * self.steps_per_epoch))
            if step < warm:
                return self.base_lr * (step + 1) / warm
            progress = min(1.0, (step - warm) / max(1, self.total_steps - warm))
            return _cos_interp(self.base_lr, c.min_lr, progress)
        if c.name == "step":
            epoch = step // self.steps_per_epoch
            return self.base_lr * c.factor ** (epoch // c.step_epochs)
        if c.name == "plateau":
            return max(c.min_lr, self.base_lr * self.plateau_scale)
        return self.base_lr  # constant

    def end_of_epoch(self, metric: float | None) -> bool:
        """Feed the epoch's monitored metric (plateau only); returns True when the rate was cut."""
        if self.monitor is None or metric is None:
            return False
        if self.monitor.is_better(metric, self.plateau_best):
            self.plateau_best, self.plateau_bad_epochs = metric, 0
            return False
        self.plateau_bad_epochs += 1
        if self.plateau_bad_epochs > self.cfg.patience:
            self.plateau_scale *= self.cfg.factor
            self.plateau_bad_epochs = 0
            return True
        return False

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "plateau_best_value": self.plateau_best,
                "plateau_bad_epochs": self.plateau_bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        if "plateau_best_value" in state:
            self.plateau_best = state["plateau_best_value"]
        else:  # a checkpoint from before Monitor stored the best as a score (negated for a loss)
            old = state["plateau_best"]
            self.plateau_best = None if old is None or self.monitor is None else self.monitor.score(old)
        self.plateau_bad_epochs = int(state["plateau_bad_epochs"])


def _cos_interp(start: float, end: float, t: float) -> float:
    """Cosine interpolation from ``start`` (t=0) to ``end`` (t=1)."""
    return end + (start - end) * (1 + math.cos(math.pi * t)) / 2
