"""Experiment trackers: ``train.loggers=[tensorboard, mlflow, wandb]`` (any subset; default none).

Each tracker is a :class:`~cnnlab.train.callbacks.Callback` that forwards what the
run directory records anyway: the per-step and per-epoch metrics (the same
numbers as ``metrics.jsonl``, against the global step), the resolved config at
the start, and the final summary at the end. The run directory stays the source
of truth; a tracker is a copy for the dashboards users already run.

Where each one writes:

- ``tensorboard``: event files in ``RUN_DIR/tensorboard`` (``tensorboard --logdir runs``).
- ``mlflow``: the tracking server or store named by ``MLFLOW_TRACKING_URI`` (MLflow's own
  variable); when unset, a local SQLite store ``RUN_DIR/mlflow.db`` (MLflow 3 keeps its
  file store in maintenance mode) with artifacts beside it in ``RUN_DIR/mlartifacts``. Experiment ``cnnlab``
  unless ``MLFLOW_EXPERIMENT_NAME`` names another; the run is called as the config.
- ``wandb``: project ``cnnlab`` (or ``WANDB_PROJECT``) in offline mode unless
  ``WANDB_MODE=online``; the offline run folder is ``RUN_DIR/wandb/offline-run-*``
  (``wandb sync`` uploads it later).

Each is an optional extra (``pip install 'cnnlab[tensorboard]'``, ``[mlflow]``,
``[wandb]``), imported only when named; a missing one is a one-line error before
any work, saying what to install.

>>> check_trackers(["tensorbord"])
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: unknown tracker 'tensorbord' in train.loggers; did you mean 'tensorboard'?
"""

from __future__ import annotations

import importlib
import json
import math
import os
from pathlib import Path
from typing import Any

from cnnlab.config import flatten_config
from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.train.callbacks import Callback

# tracker name -> (module that must import, the extra that installs it)
TRACKERS = {"tensorboard": ("torch.utils.tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow"),
            "wandb": ("wandb", "wandb")}


def check_trackers(names: list[str]) -> None:
    """Every named tracker exists and its package imports; else one line saying what to install."""
    for name in names:
        if name not in TRACKERS:
            raise CnnlabError(f"unknown tracker '{name}' in train.loggers; {did_you_mean(name, TRACKERS)}")
        module, extra = TRACKERS[name]
        try:
            importlib.import_module(module)
        except ImportError:
            raise CnnlabError(f"train.loggers names {name}, but its package is not installed: "
                              f"pip install 'cnnlab[{extra}]'") from None


def make_trackers(names: list[str], run_dir: Path, config: dict[str, Any], run_name: str) -> list["Tracker"]:
    check_trackers(names)
    classes = {"tensorboard": TensorBoardTracker, "mlflow": MlflowTracker, "wandb": WandbTracker}
    return [classes[n](Path(run_dir), config, run_name) for n in dict.fromkeys(names)]


def numbers(record: dict[str, Any], prefix: str) -> dict[str, float]:
    """The finite numeric entries of a metrics record, keys prefixed (``step/loss``); step/epoch counters dropped.

    >>> numbers({"step": 5, "loss": 0.5, "lr": None, "epoch": 1, "ok": True}, "step/")
    {'step/loss': 0.5}
    """
    out = {}
    for key, value in record.items():
        if key in ("step", "epoch", "type") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[prefix + key] = float(value)
    return out


class Tracker(Callback):
    """Base: subclasses implement ``log(values, step)``, ``log_summary(summary)`` and ``close(status)``."""

    def __init__(self, run_dir: Path, config: dict[str, Any], run_name: str) -> None:
        self.run_dir, self.config, self.run_name = run_dir, config, run_name
        self.closed = False

    def on_step_end(self, trainer, metrics: dict[str, Any] | None) -> None:
        if metrics is not None:
            self.log(numbers(metrics, "step/"), int(metrics["step"]))

    def on_epoch_end(self, trainer, metrics: dict[str, Any]) -> None:
        self.log(numbers({**metrics, "epoch_number": metrics["epoch"]}, "epoch/"), int(metrics["step"]))

    def on_summary(self, summary: dict[str, Any]) -> None:
        """Called by :func:`cnnlab.train.run.train` once ``summary.json`` is written."""
        self.log_summary(summary)
        self.finish(summary.get("status") or "completed")

    def finish(self, status: str) -> None:
        if not self.closed:
            self.closed = True
            self.close(status)

    def log(self, values: dict[str, float], step: int) -> None: ...

    def log_summary(self, summary: dict[str, Any]) -> None: ...

    def close(self, status: str) -> None: ...


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def __init__(self, run_dir, config, run_name) -> None:
        super().__init__(run_dir, config, run_name)
        from torch.utils.tensorboard import SummaryWriter

        import yaml

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        text = yaml.safe_dump(config, sort_keys=False)
        self.writer.add_text("config", "```\n" + text + "```", 0)  # markdown: keep the YAML's layout

    def log(self, values, step) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def log_summary(self, summary) -> None:
        step = int(summary.get("steps") or 0)
        for key, value in numbers(summary, "summary/").items():
            self.writer.add_scalar(key, value, step)
        self.writer.add_text("summary", "```\n" + json.dumps(summary, indent=2, default=str) + "\n```", step)

    def close(self, status) -> None:
        self.writer.flush()
        self.writer.close()


class MlflowTracker(Tracker):
    name = "mlflow"

    def __init__(self, run_dir, config, run_name) -> None:
        super().__init__(run_dir, config, run_name)
        import yaml
        from mlflow import MlflowClient

        user_uri = os.environ.get("MLFLOW_TRACKING_URI")
        uri = user_uri or f"sqlite:///{(run_dir / 'mlflow.db').absolute()}"
        self.client = MlflowClient(tracking_uri=uri)
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "cnnlab"
        found = self.client.get_experiment_by_name(experiment)
        # In the run's own store, artifacts go beside it; MLflow's default would be ./mlruns in the working directory.
        location = None if user_uri else (run_dir / "mlartifacts").absolute().as_uri()
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment, location)
        self.run_id = self.client.create_run(experiment_id, run_name=run_name,
                                             tags={"cnnlab.run_dir": str(run_dir.absolute())}).info.run_id
        self.tracking_uri = uri
        params = {k: str(v)[:500] for k, v in flatten_config(config).items()}  # MLflow caps a value at 500 characters
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for start in range(0, len(items), 100):  # log_batch takes at most 100 params per call
            self.client.log_batch(self.run_id, params=items[start:start + 100])
        self.client.log_text(self.run_id, yaml.safe_dump(config, sort_keys=False), "config.yaml")

    def log(self, values, step) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k.replace("/", "."), v, now, step)
                                                    for k, v in values.items()])

    def log_summary(self, summary) -> None:
        step = int(summary.get("steps") or 0)
        self.log(numbers(summary, "summary/"), step)
        self.client.log_dict(self.run_id, json.loads(json.dumps(summary, default=str)), "summary.json")

    def close(self, status) -> None:
        state = {"completed": "FINISHED", "early_stopping": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self.client.set_terminated(self.run_id, status=state)


class WandbTracker(Tracker):
    name = "wandb"

    def __init__(self, run_dir, config, run_name) -> None:
        super().__init__(run_dir, config, run_name)
        import wandb

        mode = os.environ.get("WANDB_MODE") or "offline"
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or "cnnlab", name=run_name,
                              dir=str(run_dir), mode=mode, config=config,
                              settings=wandb.Settings(console="off", silent=True, x_disable_stats=True))

    def log(self, values, step) -> None:
        self.run.log(values, step=step)

    def log_summary(self, summary) -> None:
        for key, value in numbers(summary, "").items():
            self.run.summary[key] = value

    def close(self, status) -> None:
        self.run.finish(exit_code=0 if status in ("completed", "early_stopping") else 1)
