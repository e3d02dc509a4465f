"""Which settings apply to which task: a value set for a task that would ignore it is refused, saying why.

A field declared ``setting(..., tasks=("classify",), why="...")`` (cnnlab.config.schema) applies
to those tasks only; set to anything but its default in a run of another task, it is refused
before any work in one line that names the key, the task and the reason. Defaults are never
refused, so a run's fully written ``config.yaml`` passes.

>>> from cnnlab.config import load_config
>>> check_scope(load_config("detect-raccoon", ["data.augment.rotate=15"]))
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: data.augment.rotate is not supported with task=detect: rotated boxes are no longer axis-aligned (box-aware: hflip, scale, translate, brightness, contrast, saturation, hue); remove it from the config
"""

from __future__ import annotations

import dataclasses

from cnnlab.config.schema import Config
from cnnlab.config.validate import get_dotted, leaf_fields
from cnnlab.errors import CnnlabError


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def out_of_scope(cfg: Config) -> list[tuple[str, str]]:
    """``[(key, why), ...]``: the settings with a non-default value that ``cfg.task`` does not use."""
    found = []
    for key, f in leaf_fields():
        tasks = f.metadata.get("tasks")
        if tasks is None or cfg.task in tasks:
            continue
        if get_dotted(cfg, key) != _default(f):
            found.append((key, f.metadata["why"]))
    return found


def refusal(task: str, key: str, why: str) -> str:
    """The scope's one reason: ``data.augment.rotate is not supported with task=detect: <why>``."""
    return f"{key} is not supported with task={task}: {why}"


def check_scope(cfg: Config) -> None:
    """Refuse (one line) the first setting ``cfg.task`` would ignore; the others are named after it."""
    found = out_of_scope(cfg)
    if not found:
        return
    (key, why), others = found[0], [k for k, _ in found[1:]]
    more = f" (nor {', '.join(others)})" if others else ""
    raise CnnlabError(f"{refusal(cfg.task, key, why)}; remove it from the config{more}")
