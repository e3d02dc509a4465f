"""The :class:`Task` interface: everything a training run does that depends on what it learns.

The run (:func:`cnnlab.train.run.run_training`) calls, in order: :meth:`Task.check` (refusals
beyond the config's own, before any work), :meth:`Task.load` (the data as train/val/test
batches on the device), :meth:`Task.build_model`, then the Trainer calls
:meth:`Task.setup`, :meth:`Task.training_loss` every step and :meth:`Task.validate` every
epoch, and the run ends with :meth:`Task.test`. The :attr:`Task.headline` says which metric
a sweep, an ablation or a cross-validation reads. How the read commands use a finished run of
the task (eval, predict, a video) is its :class:`~cnnlab.tasks.reading.RunReader`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

from cnnlab.errors import CnnlabError

Notice = Callable[[str], None] | None


@dataclass(frozen=True)
class Headline:
    """What a run of a task is judged by.

    ``val_metric`` is monitored by default (best checkpoint, early stopping, a sweep's
    objective), ``test_metric`` is the summary's headline number, ``direction`` is
    ``"max"`` or ``"min"`` for both.
    """

    val_metric: str
    test_metric: str
    direction: str = "max"
    # How reports name the test metric ("accuracy", "mAP@0.5"; default: its key without "test_") and whether
    # it is a fraction in [0, 1] (changes are then shown in points, x100). Out of the repr: it is display only.
    label: str = field(default="", repr=False)
    fraction: bool = field(default=False, repr=False)

    @property
    def name(self) -> str:
        """The test metric as a report names it: ``accuracy``, ``mAP@0.5``."""
        return self.label or self.test_metric.removeprefix("test_").replace("_", " ")

    def better(self, change: float) -> str:
        """``"better"``, ``"worse"`` or ``"same"``: what a change of the metric by ``change`` means."""
        if change == 0:
            return "same"
        return "better" if (change > 0) == (self.direction == "max") else "worse"


@dataclass
class TaskData:
    """What :meth:`Task.load` returns: the batches of each split and what describes the inputs."""

    train: Any
    val: Any
    test: Any
    input_size: tuple[int, int, int]
    num_classes: int
    classes: list[str]
    mean: list[float] | None
    std: list[float] | None
    counts: dict[str, int]
    dataset: str
    source: Any = None  # the loaded dataset object (classification: ImageData; tests and the lr range test use it)
    summary: dict[str, Any] = field(default_factory=dict)  # task-specific summary fields known after loading
    phases: dict[str, float] = field(default_factory=dict)  # extra timed phases (the lr range test)


class Task(ABC):
    """Base class; see the module docstring for when each method runs (the abstract ones a task must define)."""

    name = "task"
    headline = Headline("val_loss", "test_loss", "min")
    metrics: dict[str, str] = {"val_loss": "min"}  # validation metric -> "min" | "max": what may be monitored
    validation_keys: tuple[str, ...] = ("val_loss",)  # epoch-record keys validation fills (None without val data)
    counts_correct = False  # whether training_loss returns a count of correct predictions (a training accuracy)
    # model.* options the task reads itself, beyond the backbone constructor's arguments (model.weights,
    # the transfer options): what a sweep spec may search under model.* besides the constructor's own
    model_options: tuple[str, ...] = ()

    def check(self, cfg) -> None:
        """Refuse what this task cannot do with ``cfg`` (beyond the config's scope check), before any work."""
        monitor = cfg.train.early_stopping.monitor
        if monitor not in self.metrics:
            raise CnnlabError(f"train.early_stopping.monitor={monitor} is not a metric of task={self.name}; "
                              f"use one of {', '.join(sorted(self.metrics))}")

    def direction(self, name: str) -> str | None:
        """``"max"`` or ``"min"``: whether a higher or a lower ``name`` is better (None: not this task's metric)."""
        return self.metrics.get(name)

    def load_source(self, cfg):
        """The dataset of ``cfg`` decoded once, for many runs to share (sweeps, ablations); None: each run loads."""
        return None

    def cv_items(self, cfg, data) -> tuple[Any, int, Any]:
        """What ``cnnlab cv`` deals into folds: ``(items, count, strata)`` -- the training split of ``data``
        (a :meth:`load_source`, or None) after ``data.limit_train``, how many items it holds, and per item the
        class to stratify the folds by (a NumPy array; None: plain shuffled folds)."""
        raise CnnlabError(f"cnnlab cv does not support task={self.name} yet")

    def fold_data(self, items, train_index, held_index, fold: int):
        """The ``data`` a run of this task takes to train on ``items[train_index]`` and test on ``items[held_index]``
        (index arrays into :meth:`cv_items`' items)."""
        raise CnnlabError(f"cnnlab cv does not support task={self.name} yet")

    def objective_metrics(self) -> dict[str, str]:
        """What a sweep may optimise: ``{metric: "maximize" | "minimize"}`` (validation and training metrics)."""
        out = {k: "maximize" if mode == "max" else "minimize" for k, mode in self.metrics.items()}
        out["train_loss"] = "minimize"
        if self.counts_correct:
            out["train_accuracy"] = "maximize"
        return out

    @abstractmethod
    def load(self, cfg, device, data, notice: Notice) -> TaskData:
        """The data of ``cfg`` as train/val/test batches on ``device``; ``data`` is a shared :meth:`load_source`."""

    @abstractmethod
    def make_model(self, cfg, input_size: tuple[int, int, int], num_classes: int, pretrained: bool = True):
        """The model for inputs of ``input_size`` and ``num_classes`` classes (also how a run is read back)."""

    @abstractmethod
    def build_model(self, cfg, data: TaskData):
        """The model a run trains, on the data's device (with what the data decides: channels-last, whitening)."""

    def setup(self, trainer) -> None:
        """Called once by the Trainer with its model on the device (a task may cache what its loss needs)."""

    @abstractmethod
    def training_loss(self, trainer, x, y):
        """``(loss, correct)`` of a training batch; ``correct`` is None when ``counts_correct`` is False."""

    @abstractmethod
    def validate(self, trainer, batches) -> dict[str, Any]:
        """The validation metrics (over every rank's share) of the model as it is now."""

    @abstractmethod
    def test(self, trainer, data: TaskData) -> dict[str, Any]:
        """The summary's test fields (the headline test metric among them)."""

    def before_fit(self, trainer, data: TaskData, notice: Notice) -> dict[str, float]:
        """Just before the loop (classification: ``train.compile``); the seconds of the phases it ran."""
        return {}

    def effective(self, cfg) -> dict[str, Any]:
        """The task's entries of the summary's ``effective`` block (what ran, after the device's choices)."""
        return {}

    def untested(self) -> dict[str, Any]:
        """The test fields of a run that ended before its test (interrupted, non-finite loss)."""
        return {self.headline.test_metric: None}

    def summary(self, trainer, data: TaskData) -> dict[str, Any]:
        """Task-specific summary fields known at the end of training (best validation values)."""
        return {}

    def describe_validation(self, metrics: dict[str, Any]) -> str:
        """The validation part of an epoch's progress line ('' without validation)."""
        if metrics.get("val_loss") is None:
            return ""
        return f"val loss {metrics['val_loss']:.4f}"

    curve_scores: tuple[str, dict[str, str]] | None = None  # curves.png's second panel: (title, {key: label})

    def describe_test(self, summary: dict[str, Any]) -> str | None:
        """The line ``cnnlab train`` prints with the test result (None when the run was not tested)."""
        value = summary.get(self.headline.test_metric)
        return None if value is None else f"{self.headline.test_metric.replace('_', ' ')}: {value:.4f}"

    def describe_counts(self, data: TaskData) -> str:
        """The split sizes in the 'training ...' line."""
        c = data.counts
        return f"{c['train']} train / {c['val']} val / {c['test']} test"

    def describe_start(self, cfg, data: TaskData, params: int) -> str:
        """The start of the 'training ...' line."""
        return f"training {cfg.model.name} ({params:,} parameters) on {data.dataset}"

    def dataset_info(self, data_cfg) -> tuple[dict[str, Any], list[str]]:
        """``cnnlab data info`` for a dataset of this task: ``(the JSON object, the text lines)``."""
        raise CnnlabError(f"cnnlab data info does not describe datasets of task={self.name}")

    def dataset_preview(self, data_cfg, count: int, seed: int, augment: bool, notice: Callable[[str], None]):
        """``cnnlab data preview``: a matplotlib figure of ``count`` training samples drawn with ``seed``."""
        raise CnnlabError(f"cnnlab data preview does not draw datasets of task={self.name}")
