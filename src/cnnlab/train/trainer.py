"""The training loop.

:class:`Trainer` owns one model, its optimizer and schedule, and the batches
of one run. It keeps host synchronisation out of the step: running sums stay
on the device and are read only on logging steps and at epoch ends (on a CPU
that costs nothing, so the NaN check runs every step there).

Everything needed to continue a run exactly is in ``last.pt``: weights,
optimizer and schedule state, the epoch and batch reached, the global RNG
state (dropout), the callbacks' state and the running epoch sums. The data
order and augmentation are pure functions of (seed, epoch, batch), so a
resumed run sees the same batches as an uninterrupted one.

What differs between runs is passed in, never subclassed: the :class:`~cnnlab.tasks.Task`
decides a step's loss and the validation metrics (classification: cross-entropy and
accuracy; detection: the box loss and mAP), the :class:`~cnnlab.train.strategy.Strategy`
how many processes share the work, and callbacks may change a batch
(``on_train_batch_start``) or the loss (``on_before_backward``).
"""

from __future__ import annotations

import copy
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.config import Config
from cnnlab.errors import CnnlabError
from cnnlab.tasks import Task, get_task
from cnnlab.train.callbacks import Callback, callback_states, restore_callback_states
from cnnlab.checkpoint import load_checkpoint, load_model_state, rng_state, save_checkpoint, set_rng_state
from cnnlab.train.monitor import Monitor
from cnnlab.train.optim import build_optimizer, penalty, penalty_weights
from cnnlab.train.precision import make_scaler
from cnnlab.train.schedule import LRSchedule
from cnnlab.train.strategy import SingleProcess, Strategy


class Trainer:
    """Runs ``cfg.train.epochs`` epochs of ``train_batches`` through ``model``.

    ``extra_checkpoint`` is merged into every checkpoint (class names, data
    statistics, input size) so a checkpoint alone can rebuild the model. ``task``
    defaults to ``cfg.task``'s, ``strategy`` to one process on the model's device.
    """

    def __init__(
        self,
        cfg: Config,
        model: nn.Module,
        train_batches,
        val_batches,
        run_dir: Path,
        callbacks: list[Callback] = (),
        extra_checkpoint: dict[str, Any] | None = None,
        quiet: bool = False,
        *,
        task: Task | None = None,
        strategy: Strategy | None = None,
    ) -> None:
        self.cfg, self.model = cfg, model
        self.task = task if task is not None else get_task(cfg.task)
        self.strategy = strategy if strategy is not None else SingleProcess(next(model.parameters()).device)
        self.train_batches, self.val_batches = train_batches, val_batches
        self.run_dir = run_dir
        self.callbacks = list(callbacks)
        self.extra_checkpoint = extra_checkpoint or {}
        self.quiet = quiet
        self.device = next(model.parameters()).device
        self.optimizer = build_optimizer(model, cfg.optim)
        self.scaler = make_scaler(cfg.train.precision, self.device)  # fp16 only: loss scaling (train/precision.py)
        self.steps_per_epoch = len(train_batches)
        self.schedule = LRSchedule(cfg.schedule, cfg.optim.lr, cfg.train.epochs * self.steps_per_epoch,
                                   self.steps_per_epoch, monitor=self._monitor())
        self.penalty_weights = penalty_weights(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        # Progress and outcome.
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches of the current epoch completed
        self.step = 0  # optimizer steps completed
        self.stop_reason: str | None = None
        self.nonfinite_step: int | None = None
        self.best_val: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_epoch: int | None = None
        self.train_seconds = 0.0  # time inside training steps only
        self.images_seen = 0  # training images through the model (the last batch may be short)
        self.saved_epoch: int | None = None  # the epoch of the last.pt on disk (None: none written)
        self.val_seconds = 0.0
        self.checkpoint_seconds = 0.0
        self.history: list[dict[str, Any]] = []
        self._sums = self._zero_sums()
        self._interrupted = False  # every rank agreed to stop after this step
        self._local_interrupt = False  # Ctrl-C reached this process
        # The step runs the strategy's wrapper (DDP), images are counted over all ranks, the lead writes.
        self.train_model: nn.Module = self.strategy.wrap(model)
        self.world_size = self.strategy.world_size
        self.writes_run_dir = self.strategy.lead
        self.task.setup(self)

    # ------------------------------------------------------------------ helpers

    def notice(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def release(self) -> None:
        """Drop the strategy's wrapper of the model (DDP's reducer), so nothing outlives the process group."""
        self.train_model = self.model

    def resume_hint(self) -> str:
        """The command that continues this run (under torchrun, a torchrun command)."""
        return f"`{self.strategy.resume_command} {self.run_dir}`"

    def _zero_sums(self) -> dict[str, torch.Tensor]:
        zero = lambda dtype: torch.zeros((), device=self.device, dtype=dtype)  # noqa: E731
        return {"loss": zero(torch.float64), "correct": zero(torch.int64), "count": zero(torch.int64)}

    def _monitor(self) -> Monitor:
        """The metric that picks the best checkpoint (and feeds the plateau schedule): any improvement counts."""
        return Monitor.for_task(self.task, self.cfg.train.early_stopping.monitor)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    # ------------------------------------------------------------------ one step

    def _train_step(self, x: torch.Tensor, y: torch.Tensor, want_grad_norm: bool):
        tc = self.cfg.train
        lr = self.schedule.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # optim.layer_decay: earlier stages learn slower
        for cb in self.callbacks:  # mixup, cutmix: a callback may hand back a changed batch
            changed = cb.on_train_batch_start(self, (x, y))
            if changed is not None:
                x, y = changed
        loss, correct = self.task.training_loss(self, x, y)
        reg = penalty(self.penalty_weights, self.cfg.optim.l1, self.cfg.optim.l2)
        total = loss if reg is None else loss + reg
        for cb in self.callbacks:  # a callback may hand back a changed loss
            changed = cb.on_before_backward(self, total)
            if changed is not None:
                total = changed
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            total.backward()
        else:  # fp16: backward through the scaled loss, then true gradients again before clipping and stepping
            self.scaler.scale(total).backward()
            self.scaler.unscale_(self.optimizer)
        if tc.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self.params, tc.clip_value)
        grad_norm = None
        if tc.clip_norm is not None:  # the norm before clipping, as returned by torch
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, tc.clip_norm)
        elif want_grad_norm:
            grads = [p.grad for p in self.params if p.grad is not None]
            grad_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        if self.scaler is None:
            self.optimizer.step()
        else:  # skips the step when a gradient overflowed, and adapts the scale
            self.scaler.step(self.optimizer)
            self.scaler.update()
        with torch.no_grad():
            self._sums["loss"] += loss.detach().double() * len(y)
            if correct is not None:
                self._sums["correct"] += correct
            self._sums["count"] += len(y)
        loss = loss.detach()
        if self.world_size > 1:  # every rank logs the global batch's loss and stops together
            loss, self._interrupted = self.strategy.sync_step(
                loss, self._local_interrupt, host_read=self.device.type == "cpu" or want_grad_norm)
        return loss, grad_norm, lr

    # ------------------------------------------------------------------ the loop

    def fit(self) -> None:
        """Train until the last epoch, early stopping, a non-finite loss or Ctrl-C."""
        for cb in self.callbacks:
            cb.on_train_start(self)
        restore = self._install_interrupt_handler()
        try:
            while self.epoch < self.cfg.train.epochs and self.stop_reason is None:
                self._run_epoch()
        finally:
            restore()
        if self.stop_reason is None:
            self.stop_reason = "completed"
        for cb in self.callbacks:
            cb.on_train_end(self)

    def _run_epoch(self) -> None:
        tc = self.cfg.train
        check_every_step = self.device.type == "cpu"  # a sync is free on the CPU
        window_start, window_images = time.perf_counter(), 0
        epoch_start = time.perf_counter()
        self.train_model.train()
        batches = self.train_batches.epoch(self.epoch, start_batch=self.batch_in_epoch)
        step_clock = time.perf_counter()
        for x, y in batches:
            log_now = (self.step + 1) % tc.log_every == 0
            loss, grad_norm, lr = self._train_step(x, y, want_grad_norm=log_now)
            window_images += len(y) * self.world_size
            self.images_seen += len(y) * self.world_size
            if check_every_step or log_now:
                if not math.isfinite(loss.item()):
                    self.train_seconds += time.perf_counter() - step_clock
                    self._stop_nonfinite(loss.item())
                    return
            self.step += 1
            self.batch_in_epoch += 1
            metrics = None
            if log_now:
                self._sync()
                now = time.perf_counter()
                metrics = {"step": self.step, "epoch": self.epoch + 1, "loss": loss.item(),
                           "accuracy": self._running_accuracy(), "lr": lr,
                           "grad_norm": None if grad_norm is None else float(grad_norm),
                           "images_per_second": window_images / max(now - window_start, 1e-9)}
                window_start, window_images = now, 0
            self.train_seconds += time.perf_counter() - step_clock
            for cb in self.callbacks:
                cb.on_step_end(self, metrics)
            if self._interrupted or (self.world_size == 1 and self._local_interrupt):
                self._save_last()
                self.stop_reason = "interrupted"
                self.notice(f"interrupted at step {self.step}; resume with {self.resume_hint()}")
                return
            step_clock = time.perf_counter()
        self._end_epoch(time.perf_counter() - epoch_start)

    def _running_accuracy(self) -> float | None:
        """Training accuracy so far this epoch (None for a task that counts no correct predictions)."""
        if not self.task.counts_correct:
            return None
        sums = self._reduced_sums()
        count = int(sums["count"].item())
        return float(sums["correct"].item()) / max(count, 1)

    def _reduced_sums(self) -> dict[str, torch.Tensor]:
        """The epoch's running sums (over all ranks in a distributed run)."""
        return self.strategy.reduce_sums(self._sums)

    def _epoch_accuracy(self, count: int) -> float | None:
        """Training accuracy of the epoch (None for a task that counts no correct predictions)."""
        if not self.task.counts_correct:
            return None
        return self._reduced_sums()["correct"].item() / count

    def validate(self) -> dict[str, Any]:
        """Validation metrics of the model as it is now, as the task measures them (over all ranks)."""
        return self.task.validate(self, self.val_batches)

    def _stop_nonfinite(self, value: float) -> None:
        self.nonfinite_step = self.step + 1
        self.stop_reason = "nonfinite_loss"
        last = self.run_dir / "last.pt"
        if self.saved_epoch is not None and last.is_file():  # a run can blow up before its first checkpoint
            kept = f"the last good checkpoint is {last} (epoch {self.saved_epoch})"
        else:
            kept = "no checkpoint was saved before it"
        self.notice(f"loss became {value} at step {self.nonfinite_step} (epoch {self.epoch + 1}); "
                    f"training stopped; {kept}")

    def _end_epoch(self, seconds: float) -> None:
        self.strategy.end_of_epoch(self.model)  # before validation and checkpoints (DDP: batch-norm statistics)
        self._sync()
        sums = self._reduced_sums()
        count = max(int(sums["count"].item()), 1)
        metrics: dict[str, Any] = {
            "epoch": self.epoch + 1, "step": self.step,
            "train_loss": sums["loss"].item() / count,
            "train_accuracy": self._epoch_accuracy(count),
            **dict.fromkeys(self.task.validation_keys),
            "lr": self.schedule.lr_at(max(self.step - 1, 0)),
            "seconds": seconds,
        }
        if self.val_batches is not None:
            t0 = time.perf_counter()
            metrics.update(self.validate())
            self.val_seconds += time.perf_counter() - t0
        self.epoch += 1
        self.batch_in_epoch = 0
        self._sums = self._zero_sums()
        monitor = self._monitor()
        value = metrics.get(monitor.name)
        if monitor.is_better(value, self.best_val):
            self.best_val, self.best_epoch = value, self.epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
            self._save_best()
        if self.schedule.end_of_epoch(value):
            self.notice(f"plateau: learning rate cut to {self.schedule.lr_at(self.step):.2e}")
        self.history.append(metrics)
        for cb in self.callbacks:
            cb.on_epoch_end(self, metrics)
        if self.epoch % self.cfg.train.checkpoint_every == 0 or self.epoch == self.cfg.train.epochs \
                or self.stop_reason is not None:
            self._save_last()

    # ------------------------------------------------------------------ checkpoints

    def _save_best(self) -> None:
        if not self.strategy.lead:
            return
        t0 = time.perf_counter()
        save_checkpoint(self.run_dir / "best.pt", {
            "kind": "weights", "model": self.model.state_dict(), "epoch": self.epoch,
            "val": self.best_val, **self.extra_checkpoint})
        self.checkpoint_seconds += time.perf_counter() - t0

    def restore_best_for_test(self) -> str | None:
        """Load the early-stopping best weights into the model when the config asks for them.

        Returns what the test will score (``"best (epoch N)"``), or None when the model keeps the
        weights it has (the last ones, or an EMA a callback swapped in).
        """
        es = self.cfg.train.early_stopping
        if es.patience is None or not es.restore_best or self.best_state is None:
            return None
        self.model.load_state_dict(self.best_state)
        return f"best (epoch {self.best_epoch})"

    def _save_last(self) -> None:
        """``last.pt``: the lead writes it; every rank takes part in the collectives its content needs."""
        sums = self._reduced_sums()  # every rank saves at the same point: a collective is safe here
        extras = self.strategy.checkpoint_extras()
        if self.strategy.lead:
            self._write_last(sums, extras)
        self.saved_epoch = self.epoch

    def _write_last(self, sums: dict[str, torch.Tensor], extras: dict[str, Any]) -> None:
        t0 = time.perf_counter()
        metrics_file = self.run_dir / "metrics.jsonl"
        checkpoint = {
            "kind": "resumable",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
            "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch, "step": self.step,
            "sums": {k: v.cpu() for k, v in sums.items()},
            "rng": rng_state(),
            "callbacks": callback_states(self.callbacks),
            "best_val": self.best_val, "best_epoch": self.best_epoch,
            "train_seconds": self.train_seconds, "val_seconds": self.val_seconds,
            "images_seen": self.images_seen,
            "history": self.history,
            "metrics_bytes": metrics_file.stat().st_size if metrics_file.exists() else 0,
            **self.extra_checkpoint,
            **extras,
        }
        for cb in self.callbacks:
            cb.on_save_checkpoint(self, checkpoint)
        save_checkpoint(self.run_dir / "last.pt", checkpoint)
        self.checkpoint_seconds += time.perf_counter() - t0

    def resume_from(self, path: Path) -> None:
        """Restore the state saved in ``last.pt`` (and the best weights from ``best.pt``)."""
        state = load_checkpoint(path, map_location=self.device)
        if state.get("kind") != "resumable":
            raise CnnlabError(f"{path} holds weights only; resuming needs the last.pt of a run")
        load_model_state(self.model, state.get("model"),
                         f"cannot resume from {path}: it does not fit the model as now configured "
                         "(undo the model.* or data.* overrides)")
        try:
            saved_groups = state["optimizer"]["param_groups"]
            if saved_groups and set(saved_groups[0]) != set(self.optimizer.param_groups[0]):
                raise ValueError("the saved optimizer is of another kind")
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["schedule"])
            if self.scaler is not None and "scaler" in state:
                self.scaler.load_state_dict(state["scaler"])
            self.epoch, self.batch_in_epoch, self.step = state["epoch"], state["batch_in_epoch"], state["step"]
            self._sums = {k: v.to(self.device) for k, v in state["sums"].items()}
            set_rng_state(state["rng"])
            restore_callback_states(self.callbacks, state["callbacks"], self.notice)
            for cb in self.callbacks:
                cb.on_load_checkpoint(self, state)
            self.best_val, self.best_epoch = state["best_val"], state["best_epoch"]
            self.train_seconds, self.val_seconds = state["train_seconds"], state["val_seconds"]
            self.history = list(state["history"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            detail = " ".join(str(exc).split())[:160]
            raise CnnlabError(f"cannot resume from {path}: its optimizer, schedule or progress state does not fit "
                              f"the run as now configured ({type(exc).__name__}: {detail}); undo the optim.* "
                              "or schedule.* overrides") from None
        # Checkpoints written before images were counted: every completed step was a full batch.
        self.images_seen = int(state.get("images_seen", self.step * self.train_batches.batch_size))
        self.saved_epoch = self.epoch
        best_path = self.run_dir / "best.pt"
        if self.best_epoch is not None and best_path.exists():
            self.best_state = load_checkpoint(best_path, map_location=self.device)["model"]
        metrics_file = self.run_dir / "metrics.jsonl"
        if self.writes_run_dir and metrics_file.exists():  # drop lines written after this checkpoint
            with open(metrics_file, "r+") as fh:
                fh.truncate(state["metrics_bytes"])
        self.strategy.after_resume(self, state)

    # ------------------------------------------------------------------ Ctrl-C

    def _install_interrupt_handler(self):
        """First Ctrl-C: finish the step, save a resumable checkpoint, stop. Second: abort."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self._local_interrupt:
                raise KeyboardInterrupt
            self._local_interrupt = True
            self.notice("Ctrl-C: saving a resumable checkpoint after this step (press again to abort)")

        signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)
