"""One training run end to end, for every task: run directory, data, model, loop, test, summary.

:func:`train` checks the request (output folder, resume, torchrun), then
:func:`run_training` runs it in phases -- set up torch, load the data, build the model,
open the run directory, make the callbacks and the Trainer, fit, test and summarise. What
a phase does that depends on the task (labels or boxes, accuracy or mAP) is asked of the
:class:`~cnnlab.tasks.base.Task`; what depends on the number of processes, of the
:class:`~cnnlab.train.strategy.Strategy`.

>>> from cnnlab.config import load_config
>>> summary = train(load_config("mnist-fast"), out_dir="runs/demo")  # doctest: +SKIP
>>> summary["test_accuracy"]  # doctest: +SKIP
0.9912
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from cnnlab.config import Config, config_from_dict, config_to_dict, dump_config, flatten_config
from cnnlab.config.scope import check_scope
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic, write_text_atomic
from cnnlab.rundir import check_out_dir, check_resumable, lock_run_dir, open_run_dir
from cnnlab.runs import CONFIG_FILE, read_run_config, resolve_device
from cnnlab.tasks import Task, TaskData, get_task
from cnnlab.train.builtin_callbacks import config_callbacks
from cnnlab.train.callbacks import Callback, MetricsLogger, ProgressPrinter
from cnnlab.checkpoint import save_checkpoint
from cnnlab.train.distributed import (comm_failures_as_errors, launch_env, process_group, same_on_every_rank)
from cnnlab.train.fastpath import effective_config
from cnnlab.train.lr_find import RECORD_FILE as LR_FIND_RECORD, find_and_apply, recorded_entry
from cnnlab.train.strategy import SingleProcess, Strategy
from cnnlab.train.trainer import Trainer
from cnnlab.version import __version__

HISTORY_FILE = "config_history.yaml"  # earlier configs of a run that --resume changed
FINISHED = ("completed", "early_stopping")


def default_run_dir(cfg: Config) -> Path:
    return Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def versions() -> dict[str, str]:
    info = {"cnnlab": __version__, "torch": torch.__version__, "python": platform.python_version()}
    try:
        import torchvision

        info["torchvision"] = torchvision.__version__
    except Exception:  # torchvision is optional for training
        pass
    return info


@contextlib.contextmanager
def restored_torch_state() -> Iterator[None]:
    """Undo on exit what a run sets globally (thread count, cuDNN flags), so callers in a loop are unaffected."""
    threads = torch.get_num_threads()
    cudnn = torch.backends.cudnn
    flags = (cudnn.benchmark, cudnn.deterministic)
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        cudnn.benchmark, cudnn.deterministic = flags


def _config_changes(old: dict, new: dict) -> dict[str, list]:
    """``{"train.epochs": [1, 2], ...}``: the dotted keys whose values differ."""
    a, b = flatten_config(old), flatten_config(new)
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def record_config_change(run_dir: Path, old: dict, cfg: Config) -> dict[str, list]:
    """Write the resumed run's new config; the one it replaces is appended to ``config_history.yaml``."""
    import yaml

    old = config_to_dict(config_from_dict(old))  # compared in the same normal form as the new one
    new = config_to_dict(cfg)
    changes = _config_changes(old, new)
    if not changes:
        return changes
    history_path = run_dir / HISTORY_FILE
    history = []
    if history_path.is_file():
        try:
            loaded = yaml.safe_load(history_path.read_text(encoding="utf-8"))
            history = loaded if isinstance(loaded, list) else []
        except (UnicodeDecodeError, yaml.YAMLError):
            history = []  # a damaged history must not stop the run; the new entry starts it again
    history.append({"replaced": time.strftime("%Y-%m-%dT%H:%M:%S"), "changes": changes, "config": old})
    write_text_atomic(history_path, yaml.safe_dump(history, sort_keys=False))
    write_text_atomic(run_dir / CONFIG_FILE, dump_config(cfg))
    return changes


def finished_summary(run_dir: Path, cfg: Config, stored: dict) -> dict | None:
    """The summary of a run that already ended (completed or early-stopped) unless ``cfg`` asks for more epochs."""
    import json

    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("status") not in FINISHED:
        return None
    stored_epochs = (stored.get("train") or {}).get("epochs") if isinstance(stored.get("train"), dict) else None
    if isinstance(stored_epochs, int) and cfg.train.epochs > stored_epochs:
        return None  # train.epochs was raised: there is more to do
    return summary


def train(
    cfg: Config,
    out_dir: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    callbacks: list[Callback] = (),
    data=None,
    quiet: bool = False,
    inputs=(),
) -> dict[str, Any]:
    """Train ``cfg`` into a run directory and return its summary (also written to ``summary.json``).

    ``data`` may pass an already loaded :class:`~cnnlab.data.datasets.ImageData`
    (benchmarks reuse one copy across runs). With ``resume``, ``out_dir`` is the run to
    continue and ``cfg`` its stored config with any overrides; a changed config is recorded
    (the old one in ``config_history.yaml``). A finished run is returned as it is, with a notice.
    Global torch state the run changes (threads, cuDNN flags) is restored on return.
    ``inputs`` are paths the run reads (its config file): ``out_dir`` may never be or hold one.
    Under ``torchrun`` this process becomes one rank of the job (see cnnlab.train.distributed).
    """
    launch = launch_env()  # None unless started by torchrun (RANK, WORLD_SIZE, ... set)
    lead = launch is None or launch.rank == 0  # only the lead process checks, creates and writes the run
    task = get_task(cfg.task)
    try:  # what does not apply to the task, before any work (the same on every rank)
        check_scope(cfg)
        task.check(cfg)
    except CnnlabError as exc:
        raise exc if launch is None else same_on_every_rank(exc)
    if "features_from" in cfg.model.options:  # the config records the head that trains, not the preset's network
        from cnnlab.transfer.features import head_config  # why lazy: transfer sits above the trainer

        cfg = head_config(cfg, notice=_notice if lead and not quiet else None)
    if cfg.train.loggers:  # a missing tracker package is an error before any work
        from cnnlab.train.trackers import check_trackers

        check_trackers(cfg.train.loggers)
    if resume:
        if out_dir is None:
            raise CnnlabError("resuming needs the run directory to continue")
        run_dir = Path(out_dir)
        if lead:  # the other ranks must not probe the lock rank 0 is about to take
            check_resumable(run_dir)
        stored = read_run_config(run_dir)
        done = finished_summary(run_dir, cfg, stored)
        if done is not None:
            if lead:
                print(f"{run_dir} already finished (status {done['status']}, {done.get('epochs')} epochs); "
                      "nothing to resume; raise train.epochs to train longer", file=sys.stderr, flush=True)
            return done
    else:
        run_dir = Path(out_dir) if out_dir is not None else default_run_dir(cfg)
        if lead:
            check_out_dir(run_dir, overwrite, kind="train", inputs=inputs)
        stored = None
    with restored_torch_state(), process_group(cfg, launch) as ddp:
        strategy: Strategy = ddp if ddp is not None else SingleProcess(resolve_device(cfg.train.device))
        if ddp is not None:
            run_dir = Path(ddp.broadcast_object(str(run_dir)))  # rank 0's name (the default is a timestamp)
        try:
            return run_training(cfg, task, strategy, run_dir, overwrite=overwrite, stored=stored,
                                callbacks=list(callbacks), data=data, quiet=quiet or not strategy.lead)
        except CnnlabError as exc:
            if ddp is not None and not getattr(exc, "this_rank_only", False):
                raise same_on_every_rank(exc)  # the same config and data fail alike everywhere: rank 0 says it
            raise


def _notice(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_training(cfg: Config, task: Task, strategy: Strategy, run_dir: Path, *, overwrite: bool = False,
                 stored: dict | None = None, callbacks: list[Callback] = (), data=None,
                 quiet: bool = False) -> dict[str, Any]:
    """The run itself, for any task and strategy (``train`` checked the output folder and joined the group).

    ``stored`` is the resumed run's stored config (None for a new run).
    """
    wall_start = time.perf_counter()
    notice = None if quiet else _notice
    user_cfg = cfg  # config.yaml records what was asked; cfg from here on is what runs (GPU options, per-1024 lr)
    cfg = _set_up_torch(cfg, strategy.device, notice)
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    loaded = task.load(cfg, strategy.device, data, notice)
    batch_size = _fit_batch_size(cfg, loaded, strategy, notice)
    found_now = None  # the range test's entry when this process ran it: recorded in the run directory
    if cfg.schedule.max_lr == "find":  # the range test on a copy of the model; the RNG is left as it was
        recorded = recorded_entry(run_dir) if stored is not None else None
        entry = find_and_apply(cfg, task, loaded, strategy.device, notice, recorded, share=strategy.broadcast)
        found_now = entry if recorded is None else None
        loaded.summary["lr_find"] = entry
        loaded.phases["lr_find"] = 0.0 if recorded is not None else entry["seconds"]
    loaded.train = strategy.shard_train(loaded.train, cfg.train.seed)  # this rank's slice of every global batch
    phases["data"] = time.perf_counter() - t0 - sum(loaded.phases.values())
    phases.update(loaded.phases)
    if cfg.train.early_stopping.patience is not None and loaded.val is None:
        raise CnnlabError("train.early_stopping needs validation data; set data.val=split or data.val=test")
    t0 = time.perf_counter()
    model = strategy.prepare_model(task.build_model(cfg, loaded), cfg)
    phases["build"] = time.perf_counter() - t0
    # Only now, with data and model known to work, is the run directory created (or locked), by the lead alone.
    if not strategy.lead:
        holder = contextlib.nullcontext(run_dir)
    else:
        holder = lock_run_dir(run_dir) if stored is not None else \
            open_run_dir(run_dir, overwrite=overwrite, kind="train")
    with holder, contextlib.ExitStack() as cleanup:
        if stored is None and strategy.lead:
            write_text_atomic(run_dir / CONFIG_FILE, dump_config(user_cfg))
        if found_now is not None and strategy.lead:  # what --resume trains at (lr_find.recorded_entry)
            write_json_atomic(run_dir / LR_FIND_RECORD, found_now)
        meta = _checkpoint_meta(cfg, user_cfg, task, loaded)
        all_callbacks = _make_callbacks(cfg, user_cfg, task, strategy, run_dir, callbacks, cleanup, quiet)
        trainer = Trainer(cfg, model, loaded.train, loaded.val, run_dir, all_callbacks, meta, quiet,
                          task=task, strategy=strategy)
        if not isinstance(strategy, SingleProcess):  # a lost rank becomes one line naming --resume
            cleanup.enter_context(comm_failures_as_errors(strategy, run_dir))
        if stored is not None:
            _resume(trainer, run_dir, stored, user_cfg, strategy)
        params = sum(p.numel() for p in model.parameters())
        # what trains from the first step (model.freeze*, before any train.unfreeze_every): a summary that
        # says "head only" when a recipe meant "everything" catches the mistake at once
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if not quiet:
            trainer.notice(_start_line(cfg, task, loaded, params, strategy, batch_size, run_dir))
        extra_phases = task.before_fit(trainer, loaded, notice)
        phases.update({k: v or 0.0 for k, v in extra_phases.items()})
        t0 = time.perf_counter()
        trainer.fit()
        phases["loop"] = time.perf_counter() - t0
        summary = _summarise(cfg, task, strategy, trainer, loaded, params, batch_size, run_dir, extra_phases)
        summary["trainable_params_at_start"] = trainable
        _test(cfg, task, trainer, loaded, summary, phases, meta, all_callbacks)
        phases.update(train_steps=trainer.train_seconds, validate=trainer.val_seconds,
                      checkpoints=trainer.checkpoint_seconds)
        if cfg.train.plots and trainer.step > 0 and strategy.lead:
            phases["plots"] = _plot(run_dir, task)
        phases["wall"] = time.perf_counter() - wall_start
        summary["phase_seconds"] = {k: round(v, 3) for k, v in phases.items()}
        if strategy.lead:
            write_json_atomic(run_dir / "summary.json", summary)
        for cb in all_callbacks:
            cb.on_summary(summary)
        trainer.release()  # the DDP wrapper goes while the process group is alive
    return summary


# ----------------------------------------------------------------------------- the phases


def _set_up_torch(cfg: Config, device: torch.device, notice) -> Config:
    """Threads, cuDNN flags and the run's seed; returns the config as it runs on ``device``."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
        torch.backends.cudnn.deterministic = cfg.train.deterministic
    torch.manual_seed(cfg.train.seed)
    return effective_config(cfg, device, cfg.data.batch_size, notice=notice or (lambda m: None))


def _fit_batch_size(cfg: Config, loaded: TaskData, strategy: Strategy, notice) -> int:
    """The global batch: data.batch_size, or all the training images (shared evenly) when they are fewer."""
    batch_size, n, world = cfg.data.batch_size, loaded.counts["train"], strategy.world_size
    if batch_size <= n:
        return batch_size
    # A batch larger than the data is one batch of all of it (under torchrun: of as many as the ranks
    # share evenly), in one process and under torchrun alike; say so rather than report fictional speed.
    batch_size = loaded.train.batch_size = n - n % world
    if batch_size == 0:
        raise CnnlabError(f"{n} training image(s) are fewer than the {world} ranks: each rank needs at least "
                          "one per step; use fewer ranks or more images (data.limit_train)")
    if strategy.lead:  # said even to a quiet caller: the run is not what was asked
        _notice(f"notice: data.batch_size={cfg.data.batch_size} is larger than the {n} training images; using "
               f"batches of {batch_size}" + (f" ({batch_size // world} per rank)" if world > 1 else ""))
    return batch_size


def _checkpoint_meta(cfg: Config, user_cfg: Config, task: Task, loaded: TaskData) -> dict[str, Any]:
    """What every checkpoint carries so that it alone rebuilds the model and its input pipeline."""
    return {"task": task.name, "model_name": cfg.model.name, "model_options": dict(cfg.model.options),
            "input_size": list(loaded.input_size), "num_classes": loaded.num_classes, "classes": loaded.classes,
            "mean": loaded.mean, "std": loaded.std, "config": config_to_dict(user_cfg)}


def _make_callbacks(cfg: Config, user_cfg: Config, task: Task, strategy: Strategy, run_dir: Path,
                    callbacks: list[Callback], cleanup: contextlib.ExitStack, quiet: bool) -> list[Callback]:
    """The lead's logger and progress bar, the config's callbacks, the caller's, then experiment trackers."""
    out: list[Callback] = [MetricsLogger(run_dir / "metrics.jsonl"), ProgressPrinter(not quiet)] \
        if strategy.lead else []
    out += config_callbacks(cfg, task)
    out += callbacks
    if cfg.train.loggers and strategy.lead:
        from cnnlab.train.trackers import make_trackers  # why lazy: tensorboard / mlflow / wandb

        trackers = make_trackers(cfg.train.loggers, run_dir, config_to_dict(user_cfg), cfg.name)
        cleanup.callback(lambda: [t.finish("failed") for t in trackers])  # no-op for those already finished
        out += trackers
    return out


def _resume(trainer: Trainer, run_dir: Path, stored: dict, user_cfg: Config, strategy: Strategy) -> None:
    trainer.resume_from(run_dir / "last.pt")
    changes = record_config_change(run_dir, stored, user_cfg) if strategy.lead else {}
    changed = "".join(f"; {k}: {a} -> {b}" for k, (a, b) in changes.items())
    trainer.notice(f"resuming {run_dir} at epoch {trainer.epoch + 1}, step {trainer.step}{changed}")


def _start_line(cfg: Config, task: Task, loaded: TaskData, params: int, strategy: Strategy, batch_size: int,
                run_dir: Path) -> str:
    ranks = (f" [{strategy.world_size} ranks, {strategy.backend}, {batch_size // strategy.world_size} "
             "images per rank a step]") if strategy.world_size > 1 else ""
    return (f"{task.describe_start(cfg, loaded, params)} [{task.describe_counts(loaded)}] on {strategy.device} "
            f"-> {run_dir}{ranks}")


def _plot(run_dir: Path, task: Task) -> float:
    """``curves.png`` from ``metrics.jsonl`` (the task names its score panel); the seconds it took."""
    t0 = time.perf_counter()
    from cnnlab.report.curves import plot_curves  # why lazy: matplotlib

    plot_curves(run_dir / "metrics.jsonl", run_dir / "curves.png", task.curve_scores)
    return time.perf_counter() - t0


def _summarise(cfg: Config, task: Task, strategy: Strategy, trainer: Trainer, loaded: TaskData, params: int,
               batch_size: int, run_dir: Path, extra_phases: dict) -> dict[str, Any]:
    compile_seconds = extra_phases.get("compile")
    callback_effects = {"ema": cfg.train.ema, "lookahead": cfg.train.lookahead}
    summary: dict[str, Any] = {
        "status": trainer.stop_reason, "run_dir": str(run_dir), "name": cfg.name, "task": task.name,
        "dataset": loaded.dataset, "model": cfg.model.name, "params": params,
        "epochs": trainer.epoch, "steps": trainer.step, "batch_size": batch_size,
        "best_val": trainer.best_val, "best_epoch": trainer.best_epoch,
        "monitor": cfg.train.early_stopping.monitor,
        "train_seconds": round(trainer.train_seconds, 3), "train_images": trainer.images_seen,
        "images_per_second": round(trainer.images_seen / max(trainer.train_seconds, 1e-9), 1),
        "device": str(strategy.device), "seed": cfg.train.seed, "versions": versions(),
        "world_size": strategy.world_size, "dist_backend": strategy.backend,
        "input_size": list(loaded.input_size), "num_classes": loaded.num_classes,
        "split_sizes": loaded.counts, "mean": loaded.mean, "std": loaded.std,
        "compile_seconds": None if compile_seconds is None else round(compile_seconds, 3),
        "effective": {"precision": cfg.train.precision, "channels_last": cfg.train.channels_last,
                      "compile": compile_seconds is not None, "lr": cfg.optim.lr, **callback_effects,
                      **task.effective(cfg)},
    }
    summary.update(loaded.summary)
    summary.update(task.summary(trainer, loaded))
    return summary


def _test(cfg: Config, task: Task, trainer: Trainer, loaded: TaskData, summary: dict, phases: dict, meta: dict,
          callbacks: list[Callback]) -> None:
    """The test of the weights the run ends with (the best ones when early stopping restores them), final.pt."""
    if trainer.stop_reason == "nonfinite_loss":
        summary.update(task.untested(), nonfinite_step=trainer.nonfinite_step)
        return
    if trainer.stop_reason == "interrupted":
        summary.update(task.untested())
        return
    swapped = next((cb.tested_weights for cb in callbacks if cb.tested_weights), None)
    tested = trainer.restore_best_for_test() or swapped or "last"
    result = task.test(trainer, loaded)
    phases["test"] = result.pop("_seconds")
    summary.update(result, tested_weights=tested)
    if trainer.strategy.lead:
        save_checkpoint(trainer.run_dir / "final.pt", {"kind": "weights", "model": trainer.model.state_dict(),
                                                       "epoch": trainer.epoch, **meta})
