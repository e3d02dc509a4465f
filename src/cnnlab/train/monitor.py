"""Which validation metric decides "better", and in which direction.

One :class:`Monitor` answers the question for the best checkpoint, early
stopping and the plateau schedule, so the three can never disagree about
whether a lower or a higher value is an improvement.

>>> m = Monitor.from_name("val_loss", min_delta=0.1)
>>> m.mode, m.is_better(0.85, best=1.0), m.is_better(0.95, best=1.0)
('min', True, False)
>>> Monitor.from_name("val_accuracy").is_better(0.9, best=None)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

from cnnlab.errors import CnnlabError


@dataclass(frozen=True)
class Monitor:
    """A metric ``name``, whether lower (``"min"``) or higher (``"max"``) is better, and by how much.

    A value counts as an improvement only when it beats the best so far by more
    than ``min_delta`` (in the metric's own units).
    """

    name: str
    mode: Literal["min", "max"]
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ("min", "max"):
            raise CnnlabError(f"monitor mode must be 'min' or 'max', got {self.mode!r}")
        if not isinstance(self.min_delta, (int, float)) or not math.isfinite(self.min_delta) or self.min_delta < 0:
            raise CnnlabError(f"min_delta must be a finite number >= 0, got {self.min_delta!r}")

    @classmethod
    def from_name(cls, name: str, min_delta: float = 0.0) -> "Monitor":
        """The direction read from the metric's name: ``*accuracy`` is maximised, ``*loss`` minimised.

        A task knows the direction of its own metrics (``Task.monitor``: detection's mAP is maximised).
        """
        if name.endswith("accuracy"):
            return cls(name, "max", min_delta)
        if name.endswith("loss"):
            return cls(name, "min", min_delta)
        raise CnnlabError(f"cannot tell whether a higher or lower {name!r} is better; "
                          "name a metric ending in 'accuracy' or 'loss', or give the mode")

    @classmethod
    def for_task(cls, task, name: str, min_delta: float = 0.0) -> "Monitor":
        """The monitor of ``name`` in ``task``'s direction (a name the task does not report: read from the name)."""
        mode = task.direction(name)
        return cls.from_name(name, min_delta) if mode is None else cls(name, mode, min_delta)

    def is_better(self, value: Optional[float], best: Optional[float]) -> bool:
        """Whether ``value`` improves on ``best`` by more than ``min_delta``.

        No value (the metric was not measured) or NaN is never better; any value beats no best yet.
        """
        if value is None or math.isnan(value):
            return False
        if best is None:
            return True
        if self.mode == "max":
            return value > best + self.min_delta
        return value < best - self.min_delta

    def score(self, value: float) -> float:
        """``value`` oriented so that higher is better (the sign convention of checkpoints before Monitor)."""
        return value if self.mode == "max" else -value
