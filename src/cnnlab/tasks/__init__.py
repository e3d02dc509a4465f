"""Tasks: what a run learns (labels, boxes), behind one registry.

A :class:`~cnnlab.tasks.base.Task` owns what differs between kinds of runs -- loading the
data into train/val/test batches, building the model on a backbone, the loss of a step,
the validation and test metrics, and the headline (which metric to monitor, which to report).
:func:`cnnlab.train.run.run_training` and the :class:`~cnnlab.train.trainer.Trainer` are the
same for every task. ``task: NAME`` in a config picks one:

>>> sorted(task_names())
['classify', 'detect']
>>> get_task("classify").headline.test_metric
'test_accuracy'

The registry and the interface import nothing but :mod:`cnnlab.errors` (config and runs use
them); the tasks themselves live in their packages (``cnnlab.classify``, ``cnnlab.detect``).
A new task is one package with a ``Task`` subclass decorated ``@register_task("name")`` and one
line in ``BUILTIN`` below (docs/tasks.md has the recipe).
"""

from __future__ import annotations

import importlib

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.tasks.base import Headline, Task, TaskData
from cnnlab.tasks.reading import READERS, RunReader, all_readers, get_reader, register_reader

# Built-in tasks: name -> the module that registers it (imported on first use: the detector stays unloaded
# for classification runs).
BUILTIN = {"classify": "cnnlab.classify.task", "detect": "cnnlab.detect.task"}

_TASKS: dict[str, type[Task]] = {}


def register_task(name: str):
    """``@register_task("segment")`` on a :class:`Task` subclass; a second task of one name is refused."""

    def add(cls: type[Task]) -> type[Task]:
        if name in _TASKS:
            raise CnnlabError(f"a task named {name!r} is already registered ({_TASKS[name].__qualname__})")
        cls.name = name
        _TASKS[name] = cls
        return cls

    return add


def task_names() -> list[str]:
    """Every task a config may name."""
    return sorted(set(BUILTIN) | set(_TASKS))


def task_class(name: str) -> type[Task]:
    """The registered class of task ``name`` (its module is imported on first use)."""
    if name not in _TASKS and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    if name not in _TASKS:
        raise CnnlabError(f"no task named {name!r}; {did_you_mean(name, task_names())}")
    return _TASKS[name]


def get_task(name: str) -> Task:
    """A fresh instance of task ``name`` (one per run: a task may keep per-run state, such as anchor points)."""
    return task_class(name)()


def require_accuracy(cfg, command: str) -> None:
    """Refuse ``command`` (bagging, boosting) for a task whose headline is not test accuracy.

    They combine classifiers' class probabilities; sweeps, ablations and cross-validation read any
    task's headline metric.
    """
    headline = task_class(cfg.task).headline
    if headline.test_metric != "test_accuracy":
        raise CnnlabError(f"{command} combines classifiers' class probabilities; task={cfg.task} reports "
                          f"{headline.test_metric} and is not supported by {command} (cnnlab sweep, ablate and cv "
                          f"take any task)")


__all__ = ["RunReader", "all_readers", "get_reader", "register_reader", "READERS", "require_accuracy", "BUILTIN", "Headline", "Task", "TaskData", "get_task", "register_task", "task_class", "task_names"]
