"""The sweep spec file's own schema: its keys, the objective, and each sampler's and pruner's options.

Declared like the config (:mod:`cnnlab.config.schema`): one dataclass per section, each field
with its default, its range (``setting(valid=...)``) and a one-line ``doc``, and validated by
the same engine (:func:`cnnlab.config.validate_section`): strict types, did-you-mean for an
unknown key, ranges. The ``space`` is checked by :mod:`cnnlab.tune.spec` against the config
itself. The reference in docs/manual/tune.md is :func:`reference_markdown` (a test keeps them
equal; ``python -m cnnlab.tune.spec_schema`` prints it).

>>> build_choice({"name": "median", "warmup_epochs": 1}, PRUNERS, "pruner", DEFAULT_PRUNER)
(MedianPruner(startup_trials=5, warmup_epochs=1), {'name': 'median', 'warmup_epochs': 1})
>>> build_choice({"name": "median", "warmup": 1}, PRUNERS, "pruner", DEFAULT_PRUNER)
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: unknown pruner 'median' option 'warmup'; did you mean 'warmup_epochs'?
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from cnnlab.config import MAX_EPOCHS, MAX_SEED, int_in, setting, validate_section
from cnnlab.config.schema import POSITIVE_OR_NULL
from cnnlab.errors import CnnlabError, did_you_mean, short_repr

MAX_TRIALS = 100_000  # as `cnnlab sweep --trials`
MAX_REDUCTION = 100  # a halving rung keeping 1/100 of the trials already keeps almost none


@dataclass
class ObjectiveSection:
    """What a trial is scored by: one metric the trainer reports each epoch, and which way is better."""

    metric: Optional[str] = setting(None, doc="the metric Optuna sees each epoch (null: the base task's "
                                              "validation headline, val_accuracy for classify)")
    direction: Optional[Literal["maximize", "minimize"]] = setting(
        None, doc="null: the metric's own direction (maximize accuracy and mAP, minimize a loss)")


@dataclass
class SeededSampler:
    """A sampler's seed (every sampler has one)."""

    seed: int = setting(0, valid=int_in(0, MAX_SEED),
                        doc="the draws' seed (each worker adds its index); the grid's shuffled order, shared "
                            "by every worker")


@dataclass
class GridSampler(SeededSampler):
    """Every point of a finite space once (each key: choices, or a range with a step)."""


@dataclass
class RandomSampler(SeededSampler):
    """Independent uniform (or log-uniform) draws."""


@dataclass
class TPESampler(SeededSampler):
    """Optuna's multivariate TPE (grouped when the space has conditional keys)."""

    startup_trials: int = setting(10, valid=int_in(0, MAX_TRIALS),
                                  doc="random trials before TPE models the space")


@dataclass
class NoPruner:
    """Every trial runs all its epochs."""


@dataclass
class MedianPruner:
    """Stop a trial whose objective is worse than the median of earlier trials at the same epoch."""

    startup_trials: int = setting(5, valid=int_in(0, MAX_TRIALS),
                                  doc="trials that finish before any is pruned")
    warmup_epochs: int = setting(0, valid=int_in(0, MAX_EPOCHS),
                                 doc="epochs every trial runs before it may be pruned (0: from epoch 1 on)")


@dataclass
class HalvingPruner:
    """Successive halving: at each rung only the best 1/reduction_factor of the trials go on."""

    min_epochs: int = setting(1, valid=int_in(1, MAX_EPOCHS), doc="epochs of the first rung")
    reduction_factor: int = setting(3, valid=int_in(2, MAX_REDUCTION),
                                    doc="each rung keeps 1 in this many trials")


@dataclass
class HyperbandPruner(HalvingPruner):
    """Hyperband: several halving brackets, up to the base config's train.epochs."""


SAMPLERS: dict[str, type] = {"grid": GridSampler, "random": RandomSampler, "tpe": TPESampler}
PRUNERS: dict[str, type] = {"none": NoPruner, "median": MedianPruner, "halving": HalvingPruner,
                            "hyperband": HyperbandPruner}
DEFAULT_SAMPLER = "tpe"
DEFAULT_PRUNER = "none"


@dataclass
class SweepSpecFile:
    """The keys of a sweep spec file (``sampler`` and ``pruner``: a ``name`` and that one's options)."""

    name: Optional[str] = setting(None, doc="the sweep's name (null: the spec file's name)")
    description: Optional[str] = setting(None, doc="one paragraph, shown by `cnnlab sweep --list`")
    base: Union[str, dict, None] = setting(None, doc="required: the preset name or config YAML file (relative "
                                                     "to the spec's folder) every trial starts from")
    overrides: Optional[dict] = setting(None, doc="config keys fixed for every trial, applied to the base")
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    sampler: Optional[dict] = setting(None, doc="how trials are proposed: `name` (one of "
                                                f"{', '.join(SAMPLERS)}; null: {DEFAULT_SAMPLER}) and its options")
    pruner: Optional[dict] = setting(None, doc="when a trial stops early: `name` (one of "
                                               f"{', '.join(PRUNERS)}; null: {DEFAULT_PRUNER}) and its options")
    trials: int = setting(20, valid=int_in(1, MAX_TRIALS), doc="trials in the study (`--trials` overrides)")
    timeout: Optional[float] = setting(None, valid=(POSITIVE_OR_NULL[0], "seconds > 0 or null"),
                                       doc="no trial starts after this many seconds (`--timeout` overrides)")
    space: Optional[dict] = setting(None, doc="required: config key -> a list of choices or "
                                              "{type: int or float, low, high, step, log, when}")


def spec_file(raw: dict) -> SweepSpecFile:
    """The spec mapping's own keys checked by the config engine (types, ranges, unknown keys)."""
    return validate_section(SweepSpecFile, raw, unknown="sweep spec key")


def build_choice(section: Any, kinds: dict[str, type], what: str, default: str) -> tuple[Any, dict]:
    """A ``sampler`` or ``pruner`` section: ``(its options with defaults, the section as written with its
    values checked)``. A section without a ``name`` (or none at all) is the ``default`` kind."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise CnnlabError(f"'{what}' must be a mapping with a 'name', got {short_repr(section)}")
    name = section.get("name", default)
    if not isinstance(name, str) or name not in kinds:
        raise CnnlabError(f"unknown {what} {short_repr(name)}; {did_you_mean(str(name), kinds)}")
    options = {k: v for k, v in section.items() if k != "name"}
    built = validate_section(kinds[name], options, f"{what}.", unknown=f"{what} '{name}' option")
    return built, {"name": name, **{k: getattr(built, k) for k in options}}


def choice_options(section: dict, kinds: dict[str, type]):
    """A validated section (``SweepSpec.sampler``) with every option it leaves out at its default."""
    return kinds[section["name"]](**{k: v for k, v in section.items() if k != "name"})


# ----------------------------------------------------------------------------- the reference


def _yaml(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return f"{value:,}" if isinstance(value, int) else str(value)


def _kind(hint: Any) -> str:
    """A field's value, in words, from its type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        kinds = [_kind(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "one of " + ", ".join(args)
    return {int: "an integer", float: "a number", str: "text", dict: "a mapping"}.get(hint, str(hint))


def _row(key: str, f: dataclasses.Field, hint: Any, kinds: str = "") -> str:
    valid = f.metadata.get("valid")
    value = valid[1] if valid else _kind(hint)
    return f"| `{key}` | {kinds} | `{_yaml(f.default)}` | {value} | {f.metadata['doc']} |"


def documented_fields() -> list[tuple[str, str, dataclasses.Field, Any]]:
    """Every spec field: ``(dotted key, the sampler/pruner kinds it belongs to, field, type)``;
    a field several kinds share (inherited) is one entry."""
    out = []
    hints = typing.get_type_hints(SweepSpecFile)
    for f in dataclasses.fields(SweepSpecFile):
        if dataclasses.is_dataclass(hints[f.name]):
            sub = typing.get_type_hints(hints[f.name])
            out += [(f"{f.name}.{g.name}", "", g, sub[g.name]) for g in dataclasses.fields(hints[f.name])]
        else:
            out.append((f.name, "", f, hints[f.name]))
    for section, kinds in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        owners: dict[str, list[str]] = {}
        fields: dict[str, tuple[dataclasses.Field, Any]] = {}
        for kind, cls in kinds.items():
            sub = typing.get_type_hints(cls)
            for g in dataclasses.fields(cls):
                owners.setdefault(g.name, []).append(kind)
                fields[g.name] = (g, sub[g.name])
        out += [(f"{section}.{name}", ", ".join(owners[name]), g, hint) for name, (g, hint) in fields.items()]
    return out


def reference_markdown() -> str:
    """The spec reference table for docs/manual/tune.md, from the schema."""
    lines = ["| key | for | default | value | meaning |", "| --- | --- | --- | --- | --- |"]
    names = {"sampler": (SAMPLERS, DEFAULT_SAMPLER), "pruner": (PRUNERS, DEFAULT_PRUNER)}
    for key, kinds, f, hint in documented_fields():
        section = key.split(".")[0]
        if kinds and section in names:  # the section's first option: its name goes first
            table, default = names.pop(section)
            lines.append(f"| `{section}.name` |  | `{default}` | one of {', '.join(table)} | which {section} (below) |")
        lines.append(_row(key, f, hint, kinds))
    lines.append("")
    for section, kinds in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        said = [f"`{k}`: {cls.__doc__.strip()[0].lower()}{cls.__doc__.strip()[1:].rstrip('.')}" for k, cls in kinds.items()]
        lines += [f"{section.capitalize()}s: " + "; ".join(said) + ".", ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
