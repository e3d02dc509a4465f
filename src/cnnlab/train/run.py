"""One training run end to end: run directory, data, model, loop, test, summary.

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

from cnnlab import __version__
from cnnlab.config import Config, config_from_dict, config_to_dict, dump_config
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_json_atomic, write_text_atomic
from cnnlab.rundir import check_out_dir, check_resumable, lock_run_dir, open_run_dir
from cnnlab.runs import CONFIG_FILE, build_model, read_run_config, resolve_device
from cnnlab.train.callbacks import Callback, EarlyStopping, MetricsLogger, ProgressPrinter
from cnnlab.train.evaluate import evaluate
from cnnlab.train.trainer import Trainer

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


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def _config_changes(old: dict, new: dict) -> dict[str, list]:
    """``{"train.epochs": [1, 2], ...}``: the dotted keys whose values differ."""
    a, b = _flatten(old), _flatten(new)
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
    """
    from cnnlab.train.distributed import launch_env, process_group

    launch = launch_env()  # None unless started by torchrun (RANK, WORLD_SIZE, ... set)
    if launch is not None and cfg.task == "detect":
        from cnnlab.train.distributed import same_on_every_rank

        raise same_on_every_rank(CnnlabError("task=detect does not train under torchrun yet (its loss and mAP "
                                             "are not reduced over ranks); run `cnnlab train` in one process"))
    lead = launch is None or launch.rank == 0  # only the lead process checks, creates and writes the run
    if "features_from" in cfg.model.options:  # the config records the head that trains, not the preset's network
        from cnnlab.transfer.features import head_config

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
    with restored_torch_state(), process_group(cfg, launch) as dist:
        if dist is not None:
            run_dir = Path(dist.broadcast_object(str(run_dir)))  # rank 0's name (the default is a timestamp)
        if cfg.task == "detect":  # the same Trainer with the detection loss and mAP (cnnlab.detect)
            from cnnlab.detect.train import train_detection

            return train_detection(cfg, run_dir, overwrite, stored, list(callbacks), quiet)
        try:
            return _train(cfg, run_dir, overwrite, stored, list(callbacks), data, quiet or not lead, dist)
        except CnnlabError as exc:
            if dist is not None and not getattr(exc, "this_rank_only", False):
                from cnnlab.train.distributed import same_on_every_rank

                raise same_on_every_rank(exc)  # the same config and data fail alike everywhere: rank 0 says it
            raise


def _notice(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _train(cfg: Config, run_dir: Path, overwrite: bool, stored: dict | None, callbacks: list[Callback], data,
           quiet: bool, dist=None) -> dict[str, Any]:
    from cnnlab.data.datasets import load_dataset
    from cnnlab.data.pipeline import make_splits

    resume = stored is not None
    wall_start = time.perf_counter()
    phases: dict[str, float] = {}
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = dist.device if dist is not None else resolve_device(cfg.train.device)
    lead = dist is None or dist.lead
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
        torch.backends.cudnn.deterministic = cfg.train.deterministic
    torch.manual_seed(cfg.train.seed)
    from cnnlab.train.fastpath import effective_config

    user_cfg = cfg  # config.yaml records what was asked; cfg from here on is what runs (GPU options, per-1024 lr)
    cfg = effective_config(cfg, device, cfg.data.batch_size, notice=(lambda m: None) if quiet else _notice)

    t0 = time.perf_counter()
    if "features_from" in cfg.model.options:  # a head trained on cached backbone features (cnnlab.transfer)
        from cnnlab.transfer.features import feature_splits

        data, splits = feature_splits(cfg, device, data, notice=None if quiet else _notice)
    else:
        data = data if data is not None else load_dataset(cfg.data)
        stats = None
        weights = cfg.model.options.get("weights")
        if isinstance(weights, str):  # pretrained: feed it what it learned on (its size, its mean/std)
            from cnnlab.transfer.adapt import adapt_to_weights

            data, stats = adapt_to_weights(data, weights, notice=None if quiet else _notice,
                                           model_name=cfg.model.name)
        splits = make_splits(data, cfg.data, device, cfg.train.seed, cfg.train.channels_last, stats=stats)
    batch_size = cfg.data.batch_size
    if batch_size > splits.counts["train"]:
        # A batch larger than the data is one batch of all of it (under torchrun: of as many as the ranks
        # share evenly), in one process and under torchrun alike; say so rather than report fictional speed.
        n, world = splits.counts["train"], dist.world_size if dist is not None else 1
        batch_size = splits.train.batch_size = n - n % world
        if batch_size == 0:
            raise CnnlabError(f"{n} training image(s) are fewer than the {world} ranks: each rank needs at least "
                              "one per step; use fewer ranks or more images (data.limit_train)")
        if lead:
            print(f"notice: data.batch_size={cfg.data.batch_size} is larger than the {n} training images; using "
                  f"batches of {batch_size}" + (f" ({batch_size // world} per rank)" if world > 1 else ""),
                  file=sys.stderr, flush=True)
    phases["data"] = time.perf_counter() - t0
    lr_found = None
    if cfg.schedule.max_lr == "find":  # the range test on a copy of the model; the RNG is left as it was
        from cnnlab.train.lr_find import apply_found_lr, range_test

        lr_found = range_test(cfg, splits, data, device, notice=None if quiet else _notice)
        apply_found_lr(cfg, lr_found["suggested_lr"])
        phases["lr_find"] = lr_found["seconds"]
    t0 = time.perf_counter()
    if dist is not None:  # this rank's slice of every global batch (refused if data.batch_size does not divide)
        splits.train = dist.shard_train(splits.train, cfg.train.seed)
    phases["data"] += time.perf_counter() - t0
    if cfg.train.early_stopping.patience is not None and splits.val is None:
        raise CnnlabError("train.early_stopping needs validation data; set data.val=split or data.val=test")

    t0 = time.perf_counter()
    model = build_model(cfg, data.input_size, data.num_classes).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    whitening = None
    if cfg.train.whitening != "none":  # first conv from the training images' patch statistics
        from cnnlab.train.whitening import apply_whitening

        src = splits.train
        whitening = apply_whitening(model, src.images, src.mean, src.std, cfg.train.whitening,
                                    cfg.train.whitening_eps, cfg.train.seed)
    if dist is not None:
        if cfg.train.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if dist.rank:  # dropout draws per rank; the weights above came from the run's seed on every rank
            from cnnlab.train.distributed import rank_seed

            torch.manual_seed(rank_seed(cfg.train.seed, dist.rank))
    phases["build"] = time.perf_counter() - t0
    # Only now, with data and model known to work, is the run directory created (or locked), by rank 0 alone.
    if not lead:
        holder = contextlib.nullcontext(run_dir)
    else:
        holder = lock_run_dir(run_dir) if resume else open_run_dir(run_dir, overwrite=overwrite, kind="train")
    with holder, contextlib.ExitStack() as cleanup:
        if not resume and lead:
            write_text_atomic(run_dir / CONFIG_FILE, dump_config(user_cfg))
        params = sum(p.numel() for p in model.parameters())
        meta = {"model_name": cfg.model.name, "model_options": dict(cfg.model.options),
                "input_size": list(data.input_size), "num_classes": data.num_classes, "classes": data.classes,
                "mean": splits.mean, "std": splits.std, "config": config_to_dict(user_cfg)}

        all_callbacks: list[Callback] = [MetricsLogger(run_dir / "metrics.jsonl"), ProgressPrinter(not quiet)] \
            if lead else []
        if cfg.train.early_stopping.patience is not None:
            all_callbacks.append(EarlyStopping(cfg.train.early_stopping))
        if cfg.train.unfreeze_every is not None:
            from cnnlab.transfer.freeze import GradualUnfreeze

            all_callbacks.append(GradualUnfreeze(cfg.train.unfreeze_every))
        ema = None
        if cfg.train.lookahead is not None:  # before the EMA: the average follows the synchronised weights
            from cnnlab.train.lookahead import Lookahead

            all_callbacks.append(Lookahead(cfg.train.lookahead, cfg.train.lookahead_k))
        if cfg.train.ema is not None:  # before the caller's callbacks: a probe at the last epoch sees the EMA
            from cnnlab.train.ema import WeightEMA

            ema = WeightEMA(cfg.train.ema, cfg.train.ema_every)
            all_callbacks.append(ema)
        all_callbacks += callbacks
        if cfg.train.loggers and lead:
            from cnnlab.train.trackers import make_trackers

            trackers = make_trackers(cfg.train.loggers, run_dir, config_to_dict(user_cfg), cfg.name)
            cleanup.callback(lambda: [t.finish("failed") for t in trackers])  # no-op for those already finished
            all_callbacks += trackers
        if dist is None:
            trainer = Trainer(cfg, model, splits.train, splits.val, run_dir, all_callbacks, meta, quiet)
        else:
            from cnnlab.train.distributed import comm_failures_as_errors, make_trainer

            trainer = make_trainer(dist, cfg, model, splits.train, splits.val, run_dir, all_callbacks, meta, quiet)
            cleanup.enter_context(comm_failures_as_errors(dist, run_dir))
        if resume:
            trainer.resume_from(run_dir / "last.pt")
            changes = record_config_change(run_dir, stored, user_cfg) if lead else {}
            changed = "".join(f"; {k}: {a} -> {b}" for k, (a, b) in changes.items())
            trainer.notice(f"resuming {run_dir} at epoch {trainer.epoch + 1}, step {trainer.step}{changed}")
        if not quiet:
            trainer.notice(f"training {cfg.model.name} ({params:,} parameters) on {data.name} "
                           f"[{splits.counts['train']} train / {splits.counts['val']} val / "
                           f"{splits.counts['test']} test] on {device} -> {run_dir}"
                           + (f" [{dist.world_size} ranks, {dist.backend}, {batch_size // dist.world_size} "
                              "images per rank a step]" if dist is not None else ""))
        compile_seconds = None
        if cfg.train.compile:  # compiled and warmed up here, so train_seconds holds no compile time
            from cnnlab.train.fastpath import compile_model

            x, y = next(splits.train.epoch(0))
            probe = splits.val if splits.val is not None else splits.test
            eval_x = next(iter(probe))[0] if probe is not None else None
            compile_seconds = compile_model(model, x, y, eval_x, cfg.train.precision, cfg.train.label_smoothing,
                                            notice=lambda m: None if quiet else _notice(m))
            phases["compile"] = compile_seconds or 0.0
        t0 = time.perf_counter()
        trainer.fit()
        phases["loop"] = time.perf_counter() - t0

        summary: dict[str, Any] = {
            "status": trainer.stop_reason, "run_dir": str(run_dir), "name": cfg.name,
            "dataset": data.name, "model": cfg.model.name, "params": params,
            "epochs": trainer.epoch, "steps": trainer.step, "batch_size": batch_size,
            "best_val_accuracy": None, "best_val": trainer.best_val, "best_epoch": trainer.best_epoch,
            "monitor": cfg.train.early_stopping.monitor,
            "train_seconds": round(trainer.train_seconds, 3), "train_images": trainer.images_seen,
            "images_per_second": round(trainer.images_seen / max(trainer.train_seconds, 1e-9), 1),
            "device": str(device), "seed": cfg.train.seed, "versions": versions(),
            "world_size": 1 if dist is None else dist.world_size,
            "dist_backend": None if dist is None else dist.backend,
            "input_size": list(data.input_size), "num_classes": data.num_classes,
            "split_sizes": splits.counts, "skipped_images": len(data.skipped),
            "skipped_files": data.skipped[:50], "mean": splits.mean, "std": splits.std,
            "compile_seconds": None if compile_seconds is None else round(compile_seconds, 3),
            "effective": {"precision": cfg.train.precision, "channels_last": cfg.train.channels_last,
                          "compile": compile_seconds is not None, "lr": cfg.optim.lr, "tta": cfg.train.tta,
                          "ema": cfg.train.ema, "lookahead": cfg.train.lookahead, "whitening": whitening},
        }
        accs = [h["val_accuracy"] for h in trainer.history if h.get("val_accuracy") is not None]
        summary["best_val_accuracy"] = max(accs) if accs else None
        if lr_found is not None:
            summary["lr_find"] = {k: lr_found[k] for k in ("suggested_lr", "min_loss_lr", "steepest_lr", "steps",
                                                           "stop", "seconds")}
        if trainer.stop_reason == "nonfinite_loss":
            summary.update(test_accuracy=None, nonfinite_step=trainer.nonfinite_step)
        elif trainer.stop_reason == "interrupted":
            summary.update(test_accuracy=None)
        else:
            tested = trainer.restore_best_for_test() or ("ema" if ema is not None and ema.applied else "last")
            t0 = time.perf_counter()
            if dist is None:
                result = evaluate(model, splits.test, cfg.train.precision, tta=cfg.train.tta)
            else:  # each rank tests its share (TTA is per image, so shards need nothing more); sums added over ranks
                result = dist.evaluate(model, splits.test, cfg.train.precision, tta=cfg.train.tta)
            phases["test"] = time.perf_counter() - t0
            summary.update(test_accuracy=result.accuracy, test_loss=result.loss, tested_weights=tested)
            from cnnlab.train.checkpoint import save_checkpoint

            if lead:
                save_checkpoint(run_dir / "final.pt", {"kind": "weights", "model": model.state_dict(),
                                                       "epoch": trainer.epoch, **meta})
        phases.update(train_steps=trainer.train_seconds, validate=trainer.val_seconds,
                      checkpoints=trainer.checkpoint_seconds)
        if cfg.train.plots and trainer.step > 0 and lead:
            t0 = time.perf_counter()
            from cnnlab.report.curves import plot_curves

            plot_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
            phases["plots"] = time.perf_counter() - t0
        phases["wall"] = time.perf_counter() - wall_start
        summary["phase_seconds"] = {k: round(v, 3) for k, v in phases.items()}
        if lead:
            write_json_atomic(run_dir / "summary.json", summary)
        for cb in all_callbacks:
            if hasattr(cb, "on_summary"):  # experiment trackers get the final summary
                cb.on_summary(summary)
    return summary
