"""The dataset registry: ``data.name`` to the function that reads it, duplicates refused.

Each reader registers itself where it lives: the classification datasets in
:mod:`cnnlab.data.datasets`, the detection formats one a file in :mod:`cnnlab.data.formats`,
the generated MNIST scenes in :mod:`cnnlab.data.scenes`. A classification reader is called as
``load(cfg, name) -> ImageData``; a detection reader as ``load(cfg, problems) ->
(annotations per split, classes, root folder)``.

>>> "voc" in dataset_names("detect"), "mnist" in dataset_names("classify")
(True, True)
>>> canonical_name("fashion")
'fashion-mnist'
>>> get_dataset("cifar10").task
'classify'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from cnnlab.errors import CnnlabError, did_you_mean

Task = Literal["classify", "detect"]
TASKS = ("classify", "detect")


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset: its name, the task it serves and its reader."""

    name: str
    task: str
    load: Callable[..., Any]
    classes: tuple[str, ...] | None = None  # a fixed class list (raccoon, mnist-scenes), if it has one
    aliases: tuple[str, ...] = ()


_REGISTRY: dict[str, DatasetSpec] = {}
_ALIASES: dict[str, str] = {}


def register_dataset(name: str, *, task: Task, classes: tuple[str, ...] | list[str] | None = None,
                     aliases: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a dataset reader under ``name`` (and ``aliases``); a taken name is refused."""
    if task not in TASKS:
        raise CnnlabError(f"dataset '{name}' names task {task!r}; give one of {', '.join(TASKS)}")

    def add(load: Callable[..., Any]) -> Callable[..., Any]:
        for taken in (name, *aliases):
            if taken in _REGISTRY or taken in _ALIASES:
                raise CnnlabError(f"a dataset named '{taken}' is already registered; pick another name")
        _REGISTRY[name] = DatasetSpec(name, task, load, None if classes is None else tuple(classes), tuple(aliases))
        _ALIASES.update({alias: name for alias in aliases})
        return load

    return add


def _import_readers() -> None:
    """Import the modules that register the built-in datasets (they register on import)."""
    # why function-level: registration, like models/families.py: these modules import this one.
    import cnnlab.data.datasets  # noqa: F401
    import cnnlab.data.formats  # noqa: F401
    import cnnlab.data.scenes  # noqa: F401


def dataset_names(task: Task | None = None) -> tuple[str, ...]:
    """Registered dataset names, sorted; only those of ``task`` when it is given."""
    _import_readers()
    return tuple(sorted(n for n, spec in _REGISTRY.items() if task is None or spec.task == task))


def canonical_name(name: str) -> str:
    """The registered name for ``name`` or one of its aliases; an unknown name is a one-line error."""
    return get_dataset(name).name


def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` registered under ``name`` (or an alias); unknown names list the nearest."""
    _import_readers()
    name = _ALIASES.get(name, name)
    if name not in _REGISTRY:
        raise CnnlabError(f"unknown dataset '{name}'; {did_you_mean(str(name), _REGISTRY)}")
    return _REGISTRY[name]
