"""Callbacks: small objects the trainer calls at fixed points of the loop.

Subclass :class:`Callback` and override what you need. A callback may stop
training by setting ``trainer.stop_reason`` in ``on_epoch_end`` (early
stopping, a sweep pruning a trial), change a batch before the step
(``on_train_batch_start`` returns the new ``(x, y)``: mixup, cutmix) or the
loss before backward (``on_before_backward`` returns the new loss). Callbacks
with state implement ``state_dict``/``load_state_dict``; ``last.pt`` keeps
each one's state under its :attr:`Callback.state_key`, so ``--resume`` gives
every callback its own state even when the list of callbacks changed.

Callbacks built from the config (EMA, Lookahead, gradual unfreezing, mixup,
...) are registered with :func:`register_callback`;
:func:`cnnlab.train.builtin_callbacks.config_callbacks` builds the ones a
config asks for, in registration order.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

from cnnlab.config import EarlyStopConfig
from cnnlab.errors import CnnlabError
from cnnlab.train.monitor import Monitor


class Callback:
    """Base class: every hook is optional."""

    @property
    def state_key(self) -> str:
        """The key of this callback's state in ``last.pt`` (the class name; override to keep two apart)."""
        return type(self).__qualname__

    @property
    def tested_weights(self) -> str | None:
        """What the final test scores when this callback swapped the weights in (EMA: ``"ema"``), else None."""
        return None

    def on_train_start(self, trainer) -> None: ...

    def on_train_batch_start(self, trainer, batch: tuple) -> tuple | None:
        """Before a training step; return a changed ``(x, y)`` to train on it instead (None: unchanged)."""

    def on_before_backward(self, trainer, loss):
        """After the loss (with any L1/L2 penalty) is computed; return a changed loss (None: unchanged)."""

    def on_step_end(self, trainer, metrics: dict[str, Any] | None) -> None:
        """After every optimizer step; ``metrics`` is given on logging steps only."""

    def on_epoch_end(self, trainer, metrics: dict[str, Any]) -> None: ...

    def on_train_end(self, trainer) -> None: ...

    def on_save_checkpoint(self, trainer, checkpoint: dict[str, Any]) -> None:
        """Just before ``last.pt`` is written; ``checkpoint`` may be read (and added to, under your own key)."""

    def on_load_checkpoint(self, trainer, checkpoint: dict[str, Any]) -> None:
        """Just after a resumed run loaded ``last.pt`` (after :meth:`load_state_dict`)."""

    def on_summary(self, summary: dict[str, Any]) -> None:
        """With the run's final summary (experiment trackers log it)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def callback_states(callbacks: list[Callback]) -> dict[str, dict[str, Any]]:
    """``{state_key: state}`` of the callbacks that keep state; two callbacks with one key are a bug, refused."""
    states: dict[str, dict[str, Any]] = {}
    for cb in callbacks:
        state = cb.state_dict()
        if not state:
            continue
        if cb.state_key in states:
            raise CnnlabError(f"two callbacks keep their state under {cb.state_key!r}; give one of them "
                              "another state_key")
        states[cb.state_key] = state
    return states


def restore_callback_states(callbacks: list[Callback], saved: Any, notice: Callable[[str], None]) -> None:
    """Hand each callback the state saved under its key; a callback added since starts fresh.

    ``saved`` from checkpoints written before state keys (a list, by position) is matched by
    position as it was written, when the callbacks are still the same in number.
    """
    if isinstance(saved, list):  # checkpoints before state_key
        if len(saved) != len(callbacks):
            notice("last.pt keeps its callbacks' state by position and the callbacks changed since: "
                   "they start fresh")
            return
        for cb, state in zip(callbacks, saved):
            cb.load_state_dict(state)
        return
    if not isinstance(saved, dict):
        raise ValueError("the callbacks' state is neither a mapping nor a list")
    for cb in callbacks:
        if cb.state_key in saved:
            cb.load_state_dict(saved[cb.state_key])
    unused = sorted(set(saved) - {cb.state_key for cb in callbacks})
    if unused:
        notice(f"resuming without {', '.join(unused)} (in last.pt, not in this run): its state is dropped")


# ----------------------------------------------------------------------------- built from the config

BUILDERS: dict[str, Callable] = {}  # name -> builder(cfg, task), in the order the callbacks run


def register_callback(name: str) -> Callable:
    """``@register_callback("ema")`` on ``builder(cfg, task) -> Callback | None`` (None: not asked for)."""

    def add(builder: Callable) -> Callable:
        if name in BUILDERS:
            raise CnnlabError(f"a callback named {name!r} is already registered")
        BUILDERS[name] = builder
        return builder

    return add


class EarlyStopping(Callback):
    """Stop when the monitored validation metric has not improved for ``patience`` epochs.

    Improvement means beating the best value by more than ``min_delta`` in the
    monitored metric's direction (see :class:`~cnnlab.train.monitor.Monitor`).
    The trainer restores the best weights at the end when ``restore_best``.
    """

    def __init__(self, cfg: EarlyStopConfig, monitor: Monitor | None = None) -> None:
        self.cfg = cfg
        # The direction comes from the task when given (detection: higher mAP is better).
        self.monitor = Monitor.from_name(cfg.monitor, cfg.min_delta) if monitor is None else \
            Monitor(monitor.name, monitor.mode, cfg.min_delta)
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
        shown = trainer.task.describe_validation(metrics)  # "val loss 0.1234 acc 0.9876" (the task's metrics)
        if shown:
            parts.append(shown)
        parts.append(f"lr {metrics['lr']:.2e}  {metrics['seconds']:.1f}s")
        trainer.notice("  ".join(parts))
