"""Training a detector: the project's :class:`~cnnlab.train.trainer.Trainer` with the detection loss and mAP.

The loop, optimizer, schedule, callbacks, checkpoints, resume and Ctrl-C handling are the
trainer's own; :class:`DetectionTrainer` replaces only what a task decides -- the loss of a
step (:class:`~cnnlab.detect.loss.DetectionLoss`) and the validation metrics (mAP@0.5 and
mAP@[.5:.95] from torchmetrics, plus the validation loss). ``cnnlab train`` reaches
:func:`train_detection` through :func:`cnnlab.train.run.train` when ``task: detect``.

>>> from cnnlab.config import load_config
>>> summary = train_detection(load_config("detect-mnist-scenes"), "runs/scenes")  # doctest: +SKIP
>>> summary["test_map50"]  # doctest: +SKIP
0.97
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import torch

from cnnlab.config import Config, config_to_dict, dump_config
from cnnlab.detect.batches import DetectionBatches
from cnnlab.detect.evaluate import evaluate_detector
from cnnlab.detect.loss import DetectionLoss
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic, write_text_atomic
from cnnlab.rundir import lock_run_dir, open_run_dir
from cnnlab.runs import CONFIG_FILE, build_model, resolve_device
from cnnlab.train.callbacks import Callback, EarlyStopping, MetricsLogger, ProgressPrinter
from cnnlab.train.trainer import Trainer


class DetectionTrainer(Trainer):
    """The trainer with the detection task: batches are ``(x, BoxTargets)``, validation is mAP."""

    def __init__(self, *args, classes: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.classes = classes
        self.loss_fn = DetectionLoss(self.cfg.detect, self.model.strides)
        self.points = self.model.points().to(self.device)  # (A, 2)
        self.point_strides = self.model.point_strides().to(self.device)  # (A,)

    def _step_loss(self, x: torch.Tensor, targets) -> tuple[torch.Tensor, None]:
        """The detection loss of a batch (boxes, objectness, classes); a detector has no accuracy."""
        from cnnlab.train.precision import autocast

        with autocast(self.device.type, self.cfg.train.precision):
            pred = self.train_model(x)  # (B, A, 5 + K)
        parts = self.loss_fn(pred.float(), self.points, self.point_strides, targets.boxes, targets.labels)
        return parts["loss"], None

    def _running_accuracy(self):
        return None  # detection has no accuracy; mAP is measured on validation

    def _epoch_accuracy(self, count: int):
        return None

    def validate(self) -> dict[str, Any]:
        r = evaluate_detector(self.model, self.val_batches, self.cfg.detect, self.classes)
        return {"val_loss": r["loss"], "val_accuracy": None, "val_map50": r["map50"] or 0.0,
                "val_map": r["map"] or 0.0}


def _notice(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _input_stats(cfg: Config, splits, notice) -> tuple[list[float] | None, list[float] | None]:
    """The normalisation: the train split's, or the pretrained backbone's own (what it learnt on)."""
    if not cfg.data.normalize:
        return None, None
    mean, std = list(splits.mean), list(splits.std)
    weights = cfg.model.options.get("weights")
    if isinstance(weights, str) and weights != "download":
        from cnnlab.transfer.adapt import weights_input

        size, w_mean, w_std = weights_input(weights)
        if w_mean is not None and w_std is not None:
            if len(w_mean) != len(mean):
                raise CnnlabError(f"model.weights {weights} was trained on {len(w_mean)}-channel images but "
                                  f"{cfg.data.name} has {len(mean)}; use weights of matching channels")
            mean, std = [float(v) for v in w_mean], [float(v) for v in w_std]
            if notice:
                notice(f"normalising with the pretrained backbone's mean/std {[round(v, 3) for v in mean]} / "
                       f"{[round(v, 3) for v in std]}")
    return mean, std


def _refuse_classification_speed_options(cfg: Config) -> None:
    """The speed parts wired into the classification run only; set on a detector they would be ignored."""
    tc = cfg.train
    unused = {"train.whitening": tc.whitening != "none", "train.ema": tc.ema is not None,
              "train.lookahead": tc.lookahead is not None, "train.tta": tc.tta != "none",
              "train.compile": tc.compile, "train.gpu_fast": tc.gpu_fast,
              # not box-aware (yet): a crop would have to move and cut every box
              "data.augment.random_resized_crop": bool(cfg.data.augment.random_resized_crop),
              "data.augment.pca_lighting": bool(cfg.data.augment.pca_lighting)}
    named = [key for key, is_set in unused.items() if is_set]
    if named:
        raise CnnlabError(f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} not supported with task=detect "
                          "yet (detection training would ignore it); remove it from the config")


def train_detection(cfg: Config, run_dir: Path, overwrite: bool, stored: dict | None,
                    callbacks: list[Callback], quiet: bool) -> dict[str, Any]:
    """The body of :func:`cnnlab.train.run.train` for ``task: detect`` (out dir checked, torch state guarded)."""
    from cnnlab.data.detection import load_detection_data
    from cnnlab.train.run import record_config_change, versions

    resume = stored is not None
    notice = None if quiet else _notice
    if cfg.train.early_stopping.monitor == "val_accuracy":
        raise CnnlabError("train.early_stopping.monitor=val_accuracy has no meaning for detection; "
                          "set it to val_map50 or val_loss")
    _refuse_classification_speed_options(cfg)
    wall_start = time.perf_counter()
    phases: dict[str, float] = {}
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
        torch.backends.cudnn.deterministic = cfg.train.deterministic
    torch.manual_seed(cfg.train.seed)

    t0 = time.perf_counter()
    splits = load_detection_data(cfg, device)
    mean, std = _input_stats(cfg, splits, notice)
    phases["data"] = time.perf_counter() - t0
    if cfg.train.early_stopping.patience is not None and splits.val is None:
        raise CnnlabError("train.early_stopping needs validation data; set data.val=split or data.val=test")
    classes = list(splits.classes)
    n_train = len(splits.train)
    batch_size = min(cfg.data.batch_size, n_train)
    if batch_size < cfg.data.batch_size and notice:
        notice(f"notice: data.batch_size={cfg.data.batch_size} is larger than the {n_train} training images; "
               f"using batches of {batch_size}")
    train_batches = DetectionBatches(splits.train, batch_size, shuffle=True, augment=cfg.data.augment,
                                     mean=mean, std=std, seed=cfg.train.seed, channels_last=cfg.train.channels_last)
    eval_bs = cfg.data.eval_batch_size
    val_batches = None if splits.val is None else DetectionBatches(splits.val, eval_bs, mean=mean, std=std)
    test_batches = DetectionBatches(splits.test, eval_bs, mean=mean, std=std)

    t0 = time.perf_counter()
    input_size = tuple(int(v) for v in splits.train.images.shape[1:])
    model = build_model(cfg, input_size, len(classes)).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    phases["build"] = time.perf_counter() - t0
    counts = {"train": n_train, "val": 0 if splits.val is None else len(splits.val), "test": len(splits.test)}

    holder = lock_run_dir(run_dir) if resume else open_run_dir(run_dir, overwrite=overwrite, kind="train")
    with holder, contextlib.ExitStack() as cleanup:
        if not resume:
            write_text_atomic(run_dir / CONFIG_FILE, dump_config(cfg))
        params = sum(p.numel() for p in model.parameters())
        meta = {"task": "detect", "model_name": cfg.model.name, "model_options": dict(cfg.model.options),
                "input_size": list(input_size), "num_classes": len(classes), "classes": classes,
                "mean": mean, "std": std, "config": config_to_dict(cfg)}
        all_callbacks: list[Callback] = [MetricsLogger(run_dir / "metrics.jsonl"), ProgressPrinter(not quiet)]
        if cfg.train.early_stopping.patience is not None:
            all_callbacks.append(EarlyStopping(cfg.train.early_stopping))
        all_callbacks += callbacks
        if cfg.train.loggers:
            from cnnlab.train.trackers import make_trackers

            trackers = make_trackers(cfg.train.loggers, run_dir, config_to_dict(cfg), cfg.name)
            cleanup.callback(lambda: [t.finish("failed") for t in trackers])
            all_callbacks += trackers
        trainer = DetectionTrainer(cfg, model, train_batches, val_batches, run_dir, all_callbacks, meta, quiet,
                                   classes=classes)
        if resume:
            trainer.resume_from(run_dir / "last.pt")
            changes = record_config_change(run_dir, stored, cfg)
            changed = "".join(f"; {k}: {a} -> {b}" for k, (a, b) in changes.items())
            trainer.notice(f"resuming {run_dir} at epoch {trainer.epoch + 1}, step {trainer.step}{changed}")
        trainer.notice(f"training a detector on {cfg.model.name} features, strides {cfg.detect.strides} "
                       f"({params:,} parameters) on {cfg.data.name} [{counts['train']} train / {counts['val']} "
                       f"val / {counts['test']} test, {len(classes)} classes] on {device} -> {run_dir}")
        t0 = time.perf_counter()
        trainer.fit()
        phases["loop"] = time.perf_counter() - t0

        summary: dict[str, Any] = {
            "status": trainer.stop_reason, "run_dir": str(run_dir), "name": cfg.name, "task": "detect",
            "dataset": cfg.data.name, "model": cfg.model.name, "params": params,
            "epochs": trainer.epoch, "steps": trainer.step, "batch_size": batch_size,
            "best_val": trainer.best_val, "best_epoch": trainer.best_epoch,
            "monitor": cfg.train.early_stopping.monitor,
            "train_seconds": round(trainer.train_seconds, 3), "train_images": trainer.images_seen,
            "images_per_second": round(trainer.images_seen / max(trainer.train_seconds, 1e-9), 1),
            "device": str(device), "seed": cfg.train.seed, "versions": versions(),
            "input_size": list(input_size), "num_classes": len(classes), "classes": classes,
            "split_sizes": counts, "data_counts": dict(getattr(splits, "counts", {}) or {}),
            "mean": mean, "std": std,
            # DESIGN: every training summary has test_accuracy; a detector has none, so null and mAP beside it.
            "test_accuracy": None,
        }
        maps = [h["val_map50"] for h in trainer.history if h.get("val_map50") is not None]
        summary["best_val_map50"] = max(maps) if maps else None
        if trainer.stop_reason == "nonfinite_loss":
            summary.update(test_map50=None, test_map=None, nonfinite_step=trainer.nonfinite_step)
        elif trainer.stop_reason == "interrupted":
            summary.update(test_map50=None, test_map=None)
        else:
            tested = trainer.restore_best_for_test() or "last"
            t0 = time.perf_counter()
            result = evaluate_detector(model, test_batches, cfg.detect, classes)
            phases["test"] = time.perf_counter() - t0
            summary.update(test_map50=result["map50"], test_map=result["map"], test_loss=result["loss"],
                           test_per_class={k: {"map50": v["map50"], "map": v["map"]}
                                           for k, v in result["per_class"].items()},
                           tested_weights=tested)
            from cnnlab.train.checkpoint import save_checkpoint

            save_checkpoint(run_dir / "final.pt", {"kind": "weights", "model": model.state_dict(),
                                                   "epoch": trainer.epoch, **meta})
        phases.update(train_steps=trainer.train_seconds, validate=trainer.val_seconds,
                      checkpoints=trainer.checkpoint_seconds)
        if cfg.train.plots and trainer.step > 0:
            t0 = time.perf_counter()
            from cnnlab.report.curves import plot_curves

            plot_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
            phases["plots"] = time.perf_counter() - t0
        phases["wall"] = time.perf_counter() - wall_start
        summary["phase_seconds"] = {k: round(v, 3) for k, v in phases.items()}
        write_json_atomic(run_dir / "summary.json", summary)
        for cb in all_callbacks:
            if hasattr(cb, "on_summary"):
                cb.on_summary(summary)
    return summary
