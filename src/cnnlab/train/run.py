"""One training run end to end: run directory, data, model, loop, test, summary.

>>> from cnnlab.config import load_config
>>> summary = train(load_config("mnist-fast"), out_dir="runs/demo")  # doctest: +SKIP
>>> summary["test_accuracy"]  # doctest: +SKIP
0.9912
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from cnnlab import __version__
from cnnlab.config import Config, config_from_dict, config_to_dict, dump_config
from cnnlab.errors import CnnlabError
from cnnlab.runs import RUN_MARKER, build_model, resolve_device
from cnnlab.train.callbacks import Callback, EarlyStopping, MetricsLogger, ProgressPrinter
from cnnlab.train.evaluate import evaluate
from cnnlab.train.trainer import Trainer



def check_out_dir(path: Path, overwrite: bool) -> None:
    """Refuse an existing ``path`` unless ``overwrite``, and then only if it is a run directory.

    Called before any work starts, so a refused run costs nothing and touches nothing.
    """
    if not path.exists():
        return
    if not overwrite:
        raise CnnlabError(
            f"output directory {path} already exists; pass --overwrite to replace it, "
            "--resume to continue it, or choose another --out")
    if not path.is_dir() or (any(path.iterdir()) and not (path / RUN_MARKER).exists()):
        raise CnnlabError(f"refusing to overwrite {path}: it is not a cnnlab run directory")


def prepare_run_dir(out: str | os.PathLike, overwrite: bool) -> Path:
    """Create ``out`` (replacing an old run directory there when ``overwrite``)."""
    path = Path(out)
    check_out_dir(path, overwrite)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


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


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def train(
    cfg: Config,
    out_dir: str | os.PathLike | None = None,
    *,
    overwrite: bool = False,
    resume: bool = False,
    callbacks: list[Callback] = (),
    data=None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train ``cfg`` into a run directory and return its summary (also written to ``summary.json``).

    ``data`` may pass an already loaded :class:`~cnnlab.data.datasets.ImageData`
    (benchmarks reuse one copy across runs).
    """
    from cnnlab.data.datasets import load_dataset
    from cnnlab.data.pipeline import make_splits

    wall_start = time.perf_counter()
    phases: dict[str, float] = {}
    if resume:
        run_dir = Path(out_dir)
        if not (run_dir / "last.pt").exists():
            raise CnnlabError(f"cannot resume {run_dir}: it has no last.pt checkpoint")
    else:
        run_dir = Path(out_dir or default_run_dir(cfg))
        check_out_dir(run_dir, overwrite)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = resolve_device(cfg.train.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
        torch.backends.cudnn.deterministic = cfg.train.deterministic
    torch.manual_seed(cfg.train.seed)

    t0 = time.perf_counter()
    data = data if data is not None else load_dataset(cfg.data)
    splits = make_splits(data, cfg.data, device, cfg.train.seed, cfg.train.channels_last)
    phases["data"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = build_model(cfg, data.input_size, data.num_classes).to(device)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    phases["build"] = time.perf_counter() - t0
    if not resume:  # only now, with data and model known to work, is the run directory created
        prepare_run_dir(run_dir, overwrite)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
    params = sum(p.numel() for p in model.parameters())
    meta = {"model_name": cfg.model.name, "model_options": dict(cfg.model.options),
            "input_size": list(data.input_size), "num_classes": data.num_classes, "classes": data.classes,
            "mean": splits.mean, "std": splits.std, "config": config_to_dict(cfg)}

    all_callbacks: list[Callback] = [MetricsLogger(run_dir / "metrics.jsonl"), ProgressPrinter(not quiet)]
    if cfg.train.early_stopping.patience is not None:
        if splits.val is None:
            raise CnnlabError("train.early_stopping needs validation data; set data.val=split or data.val=test")
        all_callbacks.append(EarlyStopping(cfg.train.early_stopping))
    all_callbacks += list(callbacks)
    trainer = Trainer(cfg, model, splits.train, splits.val, run_dir, all_callbacks, meta, quiet)
    if resume:
        trainer.resume_from(run_dir / "last.pt")
        trainer.notice(f"resuming {run_dir} at epoch {trainer.epoch + 1}, step {trainer.step}")
    if not quiet:
        trainer.notice(f"training {cfg.model.name} ({params:,} parameters) on {data.name} "
                       f"[{splits.counts['train']} train / {splits.counts['val']} val / {splits.counts['test']} test] "
                       f"on {device} -> {run_dir}")
    t0 = time.perf_counter()
    trainer.fit()
    phases["loop"] = time.perf_counter() - t0

    summary: dict[str, Any] = {
        "status": trainer.stop_reason, "run_dir": str(run_dir), "name": cfg.name,
        "dataset": data.name, "model": cfg.model.name, "params": params,
        "epochs": trainer.epoch, "steps": trainer.step,
        "best_val_accuracy": None, "best_val": trainer.best_val, "best_epoch": trainer.best_epoch,
        "monitor": cfg.train.early_stopping.monitor,
        "train_seconds": round(trainer.train_seconds, 3),
        "images_per_second": round(trainer.step * cfg.data.batch_size / max(trainer.train_seconds, 1e-9), 1),
        "device": str(device), "seed": cfg.train.seed, "versions": versions(),
        "input_size": list(data.input_size), "num_classes": data.num_classes,
        "split_sizes": splits.counts, "skipped_images": len(data.skipped),
        "skipped_files": data.skipped[:50], "mean": splits.mean, "std": splits.std,
    }
    accs = [h["val_accuracy"] for h in trainer.history if h.get("val_accuracy") is not None]
    summary["best_val_accuracy"] = max(accs) if accs else None
    if trainer.stop_reason == "nonfinite_loss":
        summary.update(test_accuracy=None, nonfinite_step=trainer.nonfinite_step)
    elif trainer.stop_reason == "interrupted":
        summary.update(test_accuracy=None)
    else:
        es = cfg.train.early_stopping
        tested = "last"
        if es.patience is not None and es.restore_best and trainer.best_state is not None:
            model.load_state_dict(trainer.best_state)
            tested = f"best (epoch {trainer.best_epoch})"
        t0 = time.perf_counter()
        result = evaluate(model, splits.test, cfg.train.precision)
        phases["test"] = time.perf_counter() - t0
        summary.update(test_accuracy=result.accuracy, test_loss=result.loss, tested_weights=tested)
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
    return summary
