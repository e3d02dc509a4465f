"""Callbacks: small objects the trainer calls at fixed points of the loop.

Subclass :class:`Callback` and override what you need. A callback may stop
training by setting ``trainer.stop_reason`` in ``on_epoch_end`` (early
stopping, a sweep pruning a trial). Callbacks with state implement
``state_dict``/``load_state_dict`` so ``--resume`` restores them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from cnnlab.config import EarlyStopConfig
from cnnlab.train.monitor import Monitor


class Callback:
    """Base class: every hook is optional."""

    def on_train_start(self, trainer) -> None: ...

    def on_step_end(self, trainer, metrics: dict[str, Any] | None) -> None:
        """After every optimizer step; ``metrics`` is given on logging steps only."""

    def on_epoch_end(self, trainer, metrics: dict[str, Any]) -> None: ...

    def on_train_end(self, trainer) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EarlyStopping(Callback):
    """Stop when the monitored validation metric has not improved for ``patience`` epochs.

    Improvement means beating the best value by more than ``min_delta`` in the
    monitored metric's direction (see :class:`~cnnlab.train.monitor.Monitor`).
    The trainer restores the best weights at the end when ``restore_best``.
    """

    def __init__(self, cfg: EarlyStopConfig) -> None:
        self.cfg = cfg
        self.monitor = Monitor.from_name(cfg.monitor, cfg.min_delta)
        self.best: float | None = None  # best value of the monitored metric, in its own units
        self.bad_epochs = 0

    def on_epoch_end(self, trainer, metrics: dict[str, Any]) -> None:
        value = metrics.get(self.monitor.name)
        if value is None or self.cfg.patience is None:
            return
        if self.monitor.is_better(value, self.best):
            self.best, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.cfg.patience:
            trainer.stop_reason = "early_stopping"
            trainer.notice(f"early stopping: {self.monitor.name} has not improved for {self.bad_epochs} epochs")

    def state_dict(self) -> dict[str, Any]:
        return {"best_value": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "best_value" in state:
            self.best = state["best_value"]
        else:  # a checkpoint from before Monitor stored the best as a score (negated for a loss)
            self.best = None if state["best"] is None else self.monitor.score(state["best"])
        self.bad_epochs = int(state["bad_epochs"])


class MetricsLogger(Callback):
    """Appends step and epoch metrics to ``metrics.jsonl``, one JSON object a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def on_step_end(self, trainer, metrics: dict[str, Any] | None) -> None:
        if metrics is not None:
            self._write({"type": "step", **metrics})

    def on_epoch_end(self, trainer, metrics: dict[str, Any]) -> None:
        self._write({"type": "epoch", **metrics})


def in_notebook() -> bool:
    """True inside a Jupyter kernel, where stderr is no terminal but a progress bar still shows."""
    return "ipykernel" in sys.modules


class ProgressPrinter(Callback):
    """A tqdm bar on a terminal or in a notebook (``tqdm.auto``), one line per epoch on stderr as well."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None

    def on_step_end(self, trainer, metrics: dict[str, Any] | None) -> None:
        if not self.enabled or not (sys.stderr.isatty() or in_notebook()):
            return
        if self.bar is None or self.bar.total != trainer.steps_per_epoch:
            from tqdm.auto import tqdm  # a widget in Jupyter, the text bar on a terminal

            self.bar = tqdm(total=trainer.steps_per_epoch, file=sys.stderr, leave=False, unit="batch")
        self.bar.update(1)
        if metrics is not None:
            shown = {"loss": f"{metrics['loss']:.4f}", "lr": f"{metrics['lr']:.2e}"}
            if metrics.get("accuracy") is not None:  # detection has none
                shown["acc"] = f"{metrics['accuracy']:.3f}"
            self.bar.set_postfix(**shown)

    def on_epoch_end(self, trainer, metrics: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if not self.enabled:
            return
        train = f"train loss {metrics['train_loss']:.4f}"
        if metrics.get("train_accuracy") is not None:
            train += f" acc {metrics['train_accuracy']:.4f}"
        parts = [f"epoch {metrics['epoch']}/{trainer.cfg.train.epochs}", train]
        if metrics.get("val_accuracy") is not None:
            parts.append(f"val loss {metrics['val_loss']:.4f} acc {metrics['val_accuracy']:.4f}")
        if metrics.get("val_map50") is not None:  # detection
            parts.append(f"val loss {metrics['val_loss']:.4f} mAP@0.5 {metrics['val_map50']:.4f} "
                         f"mAP@[.5:.95] {metrics['val_map']:.4f}")
        parts.append(f"lr {metrics['lr']:.2e}  {metrics['seconds']:.1f}s")
        trainer.notice("  ".join(parts))
