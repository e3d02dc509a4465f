"""A sweep spec: the base config, the search space, the objective, the sampler and the pruner.

A spec is a YAML file (or a shipped name such as ``sweep-mnist-quick``)::

    name: my-sweep
    base: mnist-fast                 # a preset name or a config YAML file
    overrides:                       # fixed for every trial, applied to the base
      data.val: split
      train.epochs: 3
    objective: {metric: val_accuracy, direction: maximize}
    sampler: {name: tpe, seed: 0, startup_trials: 5}      # grid | random | tpe
    pruner: {name: median, startup_trials: 3, warmup_epochs: 1}  # none | median | halving | hyperband
    trials: 20
    space:
      optim.lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
      model.filters: [[8, 16, 32], [16, 32, 64]]         # a plain list is categorical
      optim.name: [adam, sgd]
      optim.momentum: {type: float, low: 0.8, high: 0.99, when: {optim.name: sgd}}

Any config key may be searched, ``model.<option>`` included. Every key and every value the
space can produce is checked against the config (and the model's options) before any trial
runs, so a typo is a one-line error naming the nearest valid key:

>>> spec = spec_from_dict({"base": "mnist-fast", "overrides": {"data.val": "split"},
...                        "space": {"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}})
>>> [(p.key, p.kind, p.low, p.high, p.log) for p in spec.space]
[('optim.lr', 'float', 0.001, 0.01, True)]
>>> spec_from_dict({"base": "mnist-fast", "overrides": {"data.val": "split"}, "space": {"optim.lr_": [0.1]}})
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: search space key 'optim.lr_': unknown config key 'optim.lr_'; did you mean 'optim.lr'?

Categorical choices that Optuna cannot store (lists, mappings) are stored as their YAML text
(``"[8, 16, 32]"``) and decoded back when a trial is configured, so a study stays readable by
plain ``optuna.load_study``.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cnnlab.config import config_with_overrides, load_yaml, parse_overrides, read_source, read_text_file
from cnnlab.config.scope import check_scope
from cnnlab.errors import CnnlabError, did_you_mean, short_repr
from cnnlab.models.registry import get_model_constructor, model_arguments
from cnnlab.rundir import check_name
from cnnlab.tasks import get_task
from cnnlab.tune.spec_schema import DEFAULT_PRUNER, DEFAULT_SAMPLER, PRUNERS, SAMPLERS, build_choice, spec_file

METRICS = {"val_accuracy": "maximize", "val_loss": "minimize", "train_accuracy": "maximize",
           "train_loss": "minimize"}  # classification's; a spec reads its base task's (Task.objective_metrics)
MAX_GRID = 100_000  # more points than any sweep here would run; refuse before enumerating them


@dataclass
class Param:
    """One searched config key: categorical choices, or an int/float range (optionally log or stepped)."""

    key: str
    kind: str  # "categorical" | "int" | "float"
    choices: list = field(default_factory=list)  # categorical: the decoded values
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    when: dict[str, list] = field(default_factory=dict)  # {other key: values that switch this one on}
    labels: list | None = None  # labelled choices (``choices: {label: value}``): Optuna stores the label

    @property
    def bundle(self) -> bool:
        """A key without a dot (``optimizer``) names a bundle: each choice is a mapping of config overrides."""
        return "." not in self.key

    def stored_choices(self) -> list:
        """The choices as Optuna stores them: labels, scalars as they are, anything else as YAML text."""
        if self.labels is not None:
            return list(self.labels)
        return [encode_choice(c) for c in self.choices]

    def decode(self, stored: Any) -> Any:
        """The config value for a stored Optuna parameter value."""
        if self.kind != "categorical":
            return stored
        return self.choices[self.stored_choices().index(stored)]

    def grid_values(self) -> list:
        """The values a grid visits (categorical choices, or every step of a stepped range)."""
        if self.kind == "categorical":
            return self.stored_choices()
        if self.step is None:
            raise CnnlabError(f"the grid sampler needs a finite set for '{self.key}': give choices, or a step "
                              f"for its {self.kind} range")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        values = [self.low + i * self.step for i in range(count)]
        return [int(round(v)) for v in values] if self.kind == "int" else [round(v, 12) for v in values]

    def describe(self) -> dict:
        out: dict[str, Any] = {"type": self.kind}
        if self.kind == "categorical":
            out["choices"] = dict(zip(self.labels, self.choices)) if self.labels is not None else self.choices
        else:
            out.update(low=self.low, high=self.high, step=self.step, log=self.log)
        if self.when:
            out["when"] = self.when
        return out


@dataclass
class SweepSpec:
    """A validated sweep spec (see the module docstring for the YAML)."""

    name: str
    description: str
    base: str
    base_raw: dict
    overrides: dict
    space: list[Param]
    metric: str
    direction: str
    sampler: dict
    pruner: dict
    trials: int
    timeout: float | None
    source: dict  # the spec as written (stored in the sweep directory)

    def signature(self) -> str:
        """A canonical text of the search space: two studies with equal signatures search the same space."""
        return json.dumps({p.key: p.describe() for p in self.space}, sort_keys=True, default=str)

    def grid_size(self) -> int:
        size = 1
        for p in self.space:
            size *= len(p.grid_values())
        return size

    def grid(self) -> dict[str, list]:
        return {p.key: p.grid_values() for p in self.space}

    def config_for(self, params: dict[str, Any], extra: dict | None = None):
        """The trial's :class:`~cnnlab.config.Config`: base, then the fixed overrides, then ``params``
        (a bundle's choice expands into its overrides)."""
        flat: dict[str, Any] = {}
        for key, value in params.items():
            if "." not in key and isinstance(value, dict):
                flat.update(value)
            else:
                flat[key] = value
        # A deep copy: an override whose value is a mapping (data.augment: {}) must not be filled in place.
        return config_with_overrides(self.base_raw, copy.deepcopy({**self.overrides, **flat, **(extra or {})}))


def encode_choice(value: Any) -> Any:
    """Scalars stay; lists and mappings become their one-line YAML text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()


# ----------------------------------------------------------------------------- shipped specs


def shipped_spec_names() -> list[str]:
    """Names of the sweep specs shipped in ``cnnlab/presets/sweeps``."""
    folder = resources.files("cnnlab") / "presets" / "sweeps"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def spec_text(source: str) -> str:
    """The YAML text of a spec file or a shipped spec name."""
    path = Path(source)
    if source.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise CnnlabError(f"sweep spec file '{source}' does not exist")

        return read_text_file(path, "sweep spec")  # a folder, unreadable or non-UTF-8 file: one line
    if source not in shipped_spec_names():
        raise CnnlabError(f"no sweep spec or YAML file named '{source}'; {did_you_mean(source, shipped_spec_names())} "
                          "(`cnnlab sweep --list` lists the shipped ones)")
    return (resources.files("cnnlab") / "presets" / "sweeps" / f"{source}.yaml").read_text(encoding="utf-8")


def load_spec(source: str, trials: int | None = None, overrides: list[str] | None = None) -> SweepSpec:
    """Read and validate a spec (file or shipped name); ``trials`` overrides the spec's own count and
    ``overrides`` (``["train.epochs=2"]``) are added to the spec's fixed overrides."""
    raw = load_yaml(spec_text(source), f"sweep spec '{source}'")  # alias bombs and deep nesting refused, as configs
    if not isinstance(raw, dict):
        raise CnnlabError(f"sweep spec '{source}' must hold a YAML mapping at the top level")
    if trials is not None:
        raw = {**raw, "trials": trials}
    if overrides:
        raw = {**raw, "overrides": {**_mapping(raw.get("overrides"), "'overrides'"), **parse_overrides(overrides)}}
    path = Path(source)
    folder = path.parent if source.endswith((".yaml", ".yml")) or path.is_file() else None
    return spec_from_dict(raw, default_name=path.stem, folder=folder)


# ----------------------------------------------------------------------------- validation


def _mapping(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CnnlabError(f"{what} must be a mapping, got {short_repr(value)}")
    return value


def resolve_base(base: str, folder: Path | None) -> str:
    """A spec's ``base`` file, relative to the spec's own folder (a preset name stays a name).

    >>> resolve_base("base.yaml", Path("/work/specs")), resolve_base("mnist-fast", Path("/work/specs"))
    ('/work/specs/base.yaml', 'mnist-fast')
    """
    path = Path(base)
    if folder is None or path.is_absolute() or not (base.endswith((".yaml", ".yml")) or "/" in base):
        return base
    return str(folder / path)


def spec_from_dict(raw: dict, default_name: str = "sweep", folder: Path | None = None) -> SweepSpec:
    """Validate a spec mapping (see the module docstring) into a :class:`SweepSpec`.

    ``folder`` is the spec file's folder: a relative ``base`` file is found there, not in the
    working directory.
    """
    raw = copy.deepcopy(raw)
    if not isinstance(raw, dict):
        raise CnnlabError(f"a sweep spec must be a mapping, got {short_repr(raw)}")
    top = spec_file(raw)  # the spec's own keys: types, ranges and unknown keys, by the config's engine
    base = top.base
    if isinstance(base, dict):  # an inline config (how a sweep directory stores its base)
        base_raw, base = base, str(base.get("name") or "inline")
    elif isinstance(base, str) and base:
        base = raw["base"] = resolve_base(base, folder)
        base_raw = read_source(base)
    else:
        raise CnnlabError("a sweep spec needs 'base': a preset name or config YAML file the trials start from")
    overrides = top.overrides or {}
    try:
        base_cfg = config_with_overrides(base_raw, overrides)
        check_scope(base_cfg)  # a setting the base task would ignore is refused here, as by cnnlab train
    except CnnlabError as exc:
        raise CnnlabError(f"sweep overrides: {exc}") from None

    task = get_task(base_cfg.task)  # the objective is one of the base task's metrics (mAP for a detector)
    metrics = task.objective_metrics()
    metric = top.objective.metric or task.headline.val_metric
    if metric not in metrics:
        raise CnnlabError(f"objective metric '{metric}' is not one the trainer reports each epoch for "
                          f"task={base_cfg.task}; {did_you_mean(str(metric), metrics)} "
                          f"(one of {', '.join(sorted(metrics))})")
    direction = top.objective.direction or metrics[metric]
    if metric.startswith("val_") and (base_cfg.data.val == "none" or base_cfg.data.final_fit):
        raise CnnlabError(f"objective {metric} needs validation data, but the base config has data.val="
                          f"{base_cfg.data.val}{' and data.final_fit=true' if base_cfg.data.final_fit else ''}; "
                          "add `data.val: split` to the spec's overrides")

    sampler_options, sampler = build_choice(top.sampler, SAMPLERS, "sampler", DEFAULT_SAMPLER)
    sampler["seed"] = sampler_options.seed  # written out: a resumed sweep draws with the same seed
    _, pruner = build_choice(top.pruner, PRUNERS, "pruner", DEFAULT_PRUNER)
    for section, checked in (("sampler", sampler), ("pruner", pruner)):
        if raw.get(section):  # the spec as stored in the sweep directory holds the checked section
            raw[section] = checked
    trials, timeout = top.trials, top.timeout

    space_raw = top.space or {}
    if not space_raw:
        raise CnnlabError("the sweep spec's 'space' is empty; name at least one config key to search")
    space = [_parse_param(key, value) for key, value in space_raw.items()]
    _check_conditions(space)
    for p in space:
        if p.key in overrides:
            raise CnnlabError(f"'{p.key}' is both fixed in 'overrides' and searched in 'space'; keep one")
        _check_key_values(p, base_raw, overrides, base_cfg.model.name, space, task.model_options)

    spec = SweepSpec(name=check_name(top.name or default_name, "the sweep's name"),
                     description=" ".join((top.description or "").split()), base=base, base_raw=base_raw,
                     overrides=overrides, space=space, metric=metric, direction=direction,
                     sampler=sampler, pruner=pruner, trials=trials, timeout=timeout, source=raw)
    if sampler["name"] == "grid":
        if any(p.when for p in space):
            raise CnnlabError("the grid sampler visits every combination; conditional parameters ('when') need "
                              "the random or tpe sampler")
        size = 1
        for p in space:
            size *= len(p.grid_values())
            if size > MAX_GRID:
                break
        if size > trials:
            shown = f"{size:,}" if size <= MAX_GRID else f"more than {MAX_GRID:,}"
            raise CnnlabError(f"the grid has {shown} points but trials is {trials}; raise --trials to {size} "
                              "or shrink the grid (fewer choices or a larger step)" if size <= MAX_GRID else
                              f"the grid has {shown} points, far more than trials={trials}; shrink the grid "
                              "or use the random or tpe sampler")
    return spec


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as text
            try:
                return float(value)
            except ValueError:
                pass
        raise CnnlabError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise CnnlabError(f"{what} must be finite, got {value!r}")
    return value


def _parse_param(key: Any, value: Any) -> Param:
    if not isinstance(key, str) or not key:
        raise CnnlabError(f"search space keys are dotted config keys such as optim.lr, got {key!r}")
    where = f"search space key '{key}'"
    if isinstance(value, list):
        value = {"type": "categorical", "choices": value}
    if not isinstance(value, dict):
        raise CnnlabError(f"{where}: give a list of choices or a mapping with type/low/high, got {value!r}")
    kind = value.get("type", "categorical" if "choices" in value else None)
    allowed = {"categorical": ("type", "choices", "when"),
               "int": ("type", "low", "high", "step", "log", "when"),
               "float": ("type", "low", "high", "step", "log", "when")}
    if kind not in allowed:
        raise CnnlabError(f"{where}: type must be categorical, int or float, got {kind!r}")
    for option in value:
        if option not in allowed[kind]:
            raise CnnlabError(f"{where}: unknown option '{option}' for a {kind} parameter; "
                              f"{did_you_mean(str(option), allowed[kind])}")
    when = _mapping(value.get("when"), f"{where}: 'when'")
    when = {k: (v if isinstance(v, list) else [v]) for k, v in when.items()}
    if kind == "categorical":
        choices = value.get("choices")
        labels = None
        if isinstance(choices, dict):  # {label: value}: Optuna stores the label
            labels = list(choices)
            if not all(isinstance(label, (str, int, float, bool)) for label in labels):
                raise CnnlabError(f"{where}: choice labels must be plain names, got {labels}")
            choices = list(choices.values())
        if not isinstance(choices, list) or not choices:
            raise CnnlabError(f"{where}: the list of choices is empty; give at least one value")
        if "." not in key and not all(isinstance(c, dict) for c in choices):
            raise CnnlabError(f"{where} is not a config key (those have a dot, e.g. optim.lr); a key without a "
                              "dot names a bundle, whose choices are mappings of config keys to values")
        param = Param(key, kind, choices=choices, when=when, labels=labels)
        stored = param.stored_choices()
        if len(set(map(repr, stored))) != len(stored):
            raise CnnlabError(f"{where}: the choices {stored} repeat a value")
        return param
    if "low" not in value or "high" not in value:
        raise CnnlabError(f"{where}: an {kind} range needs both low and high")
    low, high = _number(value["low"], f"{where}: low"), _number(value["high"], f"{where}: high")
    step = value.get("step")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise CnnlabError(f"{where}: log must be true or false, got {log!r}")
    if kind == "int":
        for name, v in (("low", low), ("high", high)):
            if float(v) != int(v):
                raise CnnlabError(f"{where}: an int range needs integer bounds, got {name}={v!r}")
        low, high = int(low), int(high)
    if low > high:
        raise CnnlabError(f"{where}: the range is empty: low={low} is above high={high}")
    if low == high and kind == "float":
        raise CnnlabError(f"{where}: the range is empty: low and high are both {low}; fix the value in "
                          "'overrides' instead")
    if log and low <= 0:
        raise CnnlabError(f"{where}: a log-scale range needs low > 0, got low={low}")
    if step is not None:
        step = _number(step, f"{where}: step")
        if step <= 0:
            raise CnnlabError(f"{where}: step must be > 0, got {step}")
        if log:
            raise CnnlabError(f"{where}: a range is either log-scale or stepped, not both")
        if kind == "int" and float(step) != int(step):
            raise CnnlabError(f"{where}: an int range needs an integer step, got {step}")
        if step > high - low and high > low:
            raise CnnlabError(f"{where}: step={step} is larger than the range {low}..{high}, which then "
                              "holds one value; shrink the step or widen the range")
        step = int(step) if kind == "int" else step
    return Param(key, kind, low=low, high=high, step=step, log=log, when=when)


def _check_conditions(space: list[Param]) -> None:
    """A ``when`` must name an earlier categorical parameter and values among its choices."""
    seen: dict[str, Param] = {}
    for p in space:
        for other, values in p.when.items():
            if other == p.key:
                raise CnnlabError(f"search space key '{p.key}': 'when' cannot depend on itself")
            if other not in seen:
                later = any(q.key == other for q in space)
                raise CnnlabError(
                    f"search space key '{p.key}': 'when' names '{other}', "
                    + ("which must come before it in the space" if later else
                       f"which is not searched; {did_you_mean(other, [q.key for q in space if q.key != p.key])}"))
            parent = seen[other]
            if parent.kind != "categorical":
                raise CnnlabError(f"search space key '{p.key}': 'when' needs '{other}' to be categorical")
            for v in values:
                if encode_choice(v) not in parent.stored_choices():
                    raise CnnlabError(f"search space key '{p.key}': 'when' value {v!r} is not among the choices of "
                                      f"'{other}' ({parent.choices}), so the parameter would never be searched")
        seen[p.key] = p


def candidate_values(p: Param) -> list:
    """The values of ``p`` checked before any trial: every choice, or the two ends of a range."""
    if p.kind == "categorical":
        return list(p.choices)
    return [p.low, p.high] if p.low != p.high else [p.low]


def _check_key_values(p: Param, base_raw: dict, overrides: dict, model_name: str, space: list[Param],
                      task_options: tuple[str, ...] = (), where: str | None = None) -> None:
    """Every value ``p`` can take must make a valid config; ``model.<option>`` must be an option of the model
    or one the task reads itself (``task_options``: :attr:`Task.model_options`, e.g. ``model.freeze_k``)."""
    where = where or f"search space key '{p.key}'"
    models = [model_name]
    model_param = next((q for q in space if q.key == "model.name"), None)
    if model_param is not None:
        models = [str(m) for m in model_param.choices]
    if p.bundle:
        for label, choice in zip(p.stored_choices(), p.choices):
            for key, value in choice.items():
                _check_key_values(Param(str(key), "categorical", choices=[value]), base_raw, overrides,
                                  model_name, space, task_options, where=f"{where}, choice '{label}'")
        return
    if p.key == "model.name":
        for name in models:
            try:
                get_model_constructor(name)
            except CnnlabError as exc:
                raise CnnlabError(f"{where}: {exc}") from None
    elif p.key.startswith("model.") and p.key != "model.options":
        option = p.key[len("model."):]
        for name in models:
            try:
                valid = [a for a in model_arguments(name) if a not in ("num_classes", "in_channels")]
                valid += [a for a in task_options if a not in valid]
            except CnnlabError as exc:
                raise CnnlabError(f"{where}: {exc}") from None
            if option not in valid:
                raise CnnlabError(f"{where}: model '{name}' has no option '{option}'; "
                                  f"{did_you_mean(p.key, ['model.' + a for a in valid])}")
    for value in candidate_values(p):
        try:  # the config's own checks: types, ranges and the task's scope
            check_scope(config_with_overrides(base_raw, copy.deepcopy({**overrides, p.key: value})))
        except CnnlabError as exc:
            raise CnnlabError(f"{where}: {exc}") from None
