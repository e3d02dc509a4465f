"""Validating a config: strict types, the ranges declared next to each field, and cross-field rules.

Unknown keys, values of the wrong type and values out of range are errors before any work
starts, and an unknown key names the nearest valid one. Model options (``model.<option>``)
are free-form here and checked against the chosen model's constructor by
:func:`cnnlab.models.create_model`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Iterator, Literal, Union

from cnnlab.config.schema import FLOAT32_MAX, Config, ModelConfig, OptimConfig
from cnnlab.errors import CnnlabError, did_you_mean, short_repr
from cnnlab.rundir import check_name
from cnnlab.yamlsafe import check_yaml_size, cut as _cut


def leaf_fields(cls: type = Config, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field]]:
    """Every ``(dotted key, field)`` of the schema that holds a value (sections are walked into).

    >>> dict(leaf_fields())["data.augment.rotate"].metadata["valid"][1]
    'degrees in [0, 180]'
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            yield from leaf_fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f


def check_ranges(obj: Any, prefix: str = "") -> None:
    """Every value of a built section (a :class:`Config` or any schema dataclass) inside the range its
    field declares (``setting(valid=...)``); ``prefix`` is the section's dotted place in the error."""
    for key, f in leaf_fields(type(obj)):
        valid = f.metadata.get("valid")
        if valid is None:
            continue
        ok, desc = valid
        value = get_dotted(obj, key)
        if not ok(value):
            raise CnnlabError(f"{prefix}{key}={short_repr(value)} is out of range; "
                              f"expected {desc() if callable(desc) else desc}")


def validate_section(cls: type, raw: Any, prefix: str = "", unknown: str | None = None):
    """Build the dataclass ``cls`` from the mapping ``raw``: the config's type checks (lossless
    conversions only), did-you-mean for an unknown key and every field's ``valid=`` range.

    ``prefix`` places the section in messages (``"pruner."``: ``pruner.min_epochs=0 is out of range``).
    An unknown key is named with its full dotted key among the config's (``unknown config key
    'train.epohcs'``) unless ``unknown`` names what the section's keys are; then the key is named
    relative to the section (``unknown pruner 'median' option 'warmup'; did you mean 'warmup_epochs'?``).

    >>> from cnnlab.config.schema import EarlyStopConfig
    >>> validate_section(EarlyStopConfig, {"patience": 3.0}, "train.early_stopping.").patience
    3
    >>> validate_section(EarlyStopConfig, {"patince": 3}, "train.early_stopping.", unknown="early-stopping option")
    Traceback (most recent call last):
    ...
    cnnlab.errors.CnnlabError: unknown early-stopping option 'patince'; did you mean 'patience'?
    """
    obj = _build(cls, raw, prefix, unknown)
    check_ranges(obj, prefix)
    return obj


def config_from_dict(raw: dict) -> Config:
    """Strictly convert a nested dict (as in ``config.yaml``) into a :class:`Config`."""
    if not isinstance(raw, dict):
        raise CnnlabError(f"a config must be a mapping, got {short_repr(raw)}")
    check_yaml_size(raw, "the config")  # e.g. a run's config.yaml edited by hand
    raw = dict(raw)
    model_raw = raw.pop("model", {}) or {}
    if not isinstance(model_raw, dict):
        raise CnnlabError("'model' must be a mapping with at least a 'name'")
    model_raw = dict(model_raw)
    options = model_raw.pop("options", {}) or {}
    if not isinstance(options, dict):
        raise CnnlabError(f"model.options must be a mapping, got {short_repr(options)}")
    options = dict(options)
    name = model_raw.pop("name", ModelConfig.name)
    options.update(model_raw)  # model.<option> may be written flat, next to the name
    for key in options:  # YAML reads `0: 1` or `true: 1` as a non-string key; an option is a name
        if not isinstance(key, str) or not key.isidentifier():
            raise CnnlabError(f"model option {short_repr(key)} is not an option name (a model's options are "
                              "identifiers such as 'filters'); see `cnnlab models NAME`")
    cfg = validate_section(Config, raw)
    check_name(cfg.name)  # runs/<name>-<time>: never a path out of runs/
    cfg.model = ModelConfig(name=check_type(name, str, "model.name"), options=options)
    check_fused_optimizer(cfg.optim)
    if cfg.train.mixup is not None and cfg.train.cutmix is not None:
        raise CnnlabError("train.mixup and train.cutmix are both set; choose one (set the other to null)")
    return cfg


def check_fused_optimizer(optim: OptimConfig) -> None:
    """Refuse ``optim.fused=true`` for an optimizer torch has no fused kernel for (RMSprop)."""
    if optim.fused and optim.name not in ("sgd", "adam", "adamw"):
        raise CnnlabError(f"optim.fused=true works with sgd, adam and adamw; torch has no fused {optim.name} "
                          "(set optim.fused=false)")


def _build(cls, raw: Any, prefix: str, unknown: str | None, rel: str = ""):
    """``cls`` from ``raw`` with every value type-checked; nested sections are built the same way.
    ``rel`` is the key path inside the section ``unknown`` names (see :func:`validate_section`)."""
    if not isinstance(raw, dict):
        raise CnnlabError(f"'{(prefix + rel).rstrip('.')}' must be a mapping, got {short_repr(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        dotted = f"{prefix}{rel}{key}"
        if key not in fields:
            if unknown is None:
                valid = [f"{prefix}{rel}{k}" for k in fields]
                raise CnnlabError(f"unknown config key '{_cut(dotted, 100)}'; {did_you_mean(dotted, valid)}")
            shown = f"{rel}{key}"
            suggestion = did_you_mean(shown, [f"{rel}{k}" for k in fields]) if fields else "it takes no options"
            raise CnnlabError(f"unknown {unknown} '{_cut(shown, 100)}'; {suggestion}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, prefix, unknown, f"{rel}{key}.")
        else:
            kwargs[key] = check_type(value, hint, dotted)
    return cls(**kwargs)


def check_type(value: Any, hint: Any, key: str) -> Any:
    """Return ``value`` converted to ``hint`` where lossless, else raise naming the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union:
        if value is None and type(None) in args:
            return None
        errors = []
        for option in [a for a in args if a is not type(None)]:
            try:
                return check_type(value, option, key)
            except CnnlabError as exc:
                errors.append(str(exc))
        raise CnnlabError(errors[0] if errors else f"{key} must not be null")
    if origin is Literal:
        if value not in args:
            raise CnnlabError(f"{key}={short_repr(value)} is not valid; expected one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise CnnlabError(f"{key} must be a list, got {short_repr(value)}")
        if origin is tuple and args and len(args) != len(value):
            raise CnnlabError(f"{key} must have {len(args)} values, got {len(value)}")
        items = [check_type(v, args[i] if origin is tuple else (args[0] if args else Any), key)
                 for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise CnnlabError(f"{key} must be true or false, got {short_repr(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            # 3.0 is the integer 3; 1e300 is not an integer anyone meant (nor exactly representable).
            if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
                return int(value)
            raise CnnlabError(f"{key} must be an integer, got {short_repr(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CnnlabError(f"{key} must be a number, got {short_repr(value)}")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            raise CnnlabError(f"{key}={short_repr(value)} is too large; expected a finite number") from None
        if not math.isfinite(number):
            raise CnnlabError(f"{key}={number} is not a finite number; give a finite value")
        if abs(number) > FLOAT32_MAX:  # torch keeps these in float32 tensors: 1e300 would overflow there
            raise CnnlabError(f"{key}={number:g} is too large; expected a magnitude below {FLOAT32_MAX:.1e}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise CnnlabError(f"{key} must be a string, got {short_repr(value)}")
        return value
    if hint is dict:
        if not isinstance(value, dict):
            raise CnnlabError(f"{key} must be a mapping, got {short_repr(value)}")
        return value
    return value


def get_dotted(cfg: Any, key: str) -> Any:
    """``get_dotted(cfg, "train.epochs")`` -> ``cfg.train.epochs``."""
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


