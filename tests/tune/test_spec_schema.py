"""The sweep spec's own sections on the config's engine: every bound, unknown keys at each level, type
errors, the shipped specs unchanged against the old validator's frozen output, and the reference doc."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnlab.config import TrainConfig, config_from_dict, validate_section
from cnnlab.errors import CnnlabError
from cnnlab.tune.spec import spec_from_dict
from cnnlab.tune.spec_schema import PRUNERS, SAMPLERS, choice_options, documented_fields, reference_markdown
from cnnlab.tune.sweep import make_pruner, make_sampler
from tests.tune.conftest import cli
from tests.tune.spec_cases import BASE, frozen_outputs

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "data" / "spec_golden.json"

# The bounds, written out here rather than read from the schema: a changed range must change this table.
INT_BOUNDS = {  # key: (kinds that take it, low, high)
    "trials": ((None,), 1, 100_000),
    "sampler.seed": (("grid", "random", "tpe"), 0, 2**32 - 1),
    "sampler.startup_trials": (("tpe",), 0, 100_000),
    "pruner.startup_trials": (("median",), 0, 100_000),
    "pruner.warmup_epochs": (("median",), 0, 10**6),
    "pruner.min_epochs": (("halving", "hyperband"), 1, 10**6),
    "pruner.reduction_factor": (("halving", "hyperband"), 2, 100),
}
GRID_SPACE = {"optim.name": ["adam", "sgd"]}  # finite, so every sampler (grid included) takes the spec


def spec_with(key: str, value, kind: str | None = None) -> dict:
    """BASE with ``key`` (``trials``, ``objective.metric``, ``pruner.min_epochs``) set to ``value``."""
    raw = {**BASE, "space": GRID_SPACE, "trials": 4}
    if "." not in key:
        return {**raw, key: value}
    section, option = key.split(".")
    body = {option: value} if section == "objective" else {"name": kind, option: value}
    return {**raw, section: body}


def refused(raw: dict) -> str:
    with pytest.raises(CnnlabError) as err:
        spec_from_dict(raw)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_shipped_specs_and_cases_load_as_the_old_validator_did():
    """Every field of every SweepSpec equals what the hand-written validator produced (frozen before it went)."""
    assert frozen_outputs() == json.loads(GOLDEN.read_text())


def test_every_integer_field_is_bounded_here():
    ints = {key for key, _, f, hint in documented_fields() if hint is int}
    assert ints == set(INT_BOUNDS)


def value_of(spec, key: str, kind: str | None):
    if key == "trials":
        return spec.trials
    section, option = key.split(".")
    return getattr(choice_options(getattr(spec, section), SAMPLERS if section == "sampler" else PRUNERS), option)


@pytest.mark.parametrize("key, kind", [(key, kind) for key, (kinds, _, _) in INT_BOUNDS.items() for kind in kinds])
def test_integer_bounds(key, kind):
    _, low, high = INT_BOUNDS[key]
    for value in (low, high):
        spec = spec_from_dict(spec_with(key, value, kind))
        assert value_of(spec, key, kind) == value
        make_sampler(spec)  # Optuna takes the extremes too
        make_pruner(spec, epochs=3)
    for value in (low - 1, high + 1):
        assert refused(spec_with(key, value, kind)) == (f"{key}={value} is out of range; expected an integer in "
                                                        f"[{low}, {high:,}]")


def test_timeout_bounds():
    assert spec_from_dict(spec_with("timeout", 1e-3)).timeout == 1e-3
    assert spec_from_dict(spec_with("timeout", None)).timeout is None
    for value in (0, -5):
        assert refused(spec_with("timeout", value)) == f"timeout={float(value)} is out of range; expected seconds > 0 or null"
    assert "timeout=inf is not a finite number" in refused(spec_with("timeout", float("inf")))


def test_defaults_are_the_ones_the_sweep_used():
    """The defaults sweep.py hard-coded before the schema held them (TPE 10; median 5/0; halving 1/3)."""
    spec = spec_from_dict(BASE)
    assert spec.trials == 20 and spec.sampler == {"name": "tpe", "seed": 0} and spec.pruner == {"name": "none"}
    assert make_sampler(spec)._n_startup_trials == 10
    median = make_pruner(spec_from_dict({**BASE, "pruner": {"name": "median"}}), epochs=3)
    assert (median._n_startup_trials, median._n_warmup_steps) == (5, 1)  # warmup_epochs 0, + 1: steps are epochs
    for name in ("halving", "hyperband"):
        pruner = make_pruner(spec_from_dict({**BASE, "pruner": {"name": name}}), epochs=3)
        assert (pruner._min_resource, pruner._reduction_factor) == (1, 3)


@pytest.mark.parametrize("raw, message", [
    ({**BASE, "spce": {}}, "unknown sweep spec key 'spce'; did you mean 'space'?"),
    ({**BASE, "objective": {"metrc": "val_loss"}},
     "unknown sweep spec key 'objective.metrc'; did you mean 'objective.metric'?"),
    ({**BASE, "sampler": {"name": "tpee"}}, "unknown sampler 'tpee'; did you mean 'tpe'?"),
    ({**BASE, "sampler": {"name": "tpe", "startup": 3}},
     "unknown sampler 'tpe' option 'startup'; did you mean 'startup_trials'?"),
    ({**BASE, "sampler": {"name": "random", "startup_trials": 3}},
     "unknown sampler 'random' option 'startup_trials'; valid choices: seed"),
    ({**BASE, "pruner": {"name": "medain"}}, "unknown pruner 'medain'; did you mean 'median'?"),
    ({**BASE, "pruner": {"name": "median", "warmup": 1}},
     "unknown pruner 'median' option 'warmup'; did you mean 'warmup_epochs'?"),
    ({**BASE, "pruner": {"name": "none", "min_epochs": 1}}, "unknown pruner 'none' option 'min_epochs'; it takes no options"),
    ({**BASE, "pruner": {"name": "hyperband", "max_epochs": 4}},
     "unknown pruner 'hyperband' option 'max_epochs'; did you mean 'min_epochs'?"),
])
def test_unknown_keys_at_each_level(raw, message):
    assert refused(raw) == message


@pytest.mark.parametrize("raw, message", [
    ({**BASE, "trials": "many"}, "trials must be an integer, got 'many'"),
    ({**BASE, "trials": 2.5}, "trials must be an integer, got 2.5"),
    ({**BASE, "trials": True}, "trials must be an integer, got True"),
    ({**BASE, "timeout": "soon"}, "timeout must be a number, got 'soon'"),
    ({**BASE, "name": 5}, "name must be a string, got 5"),
    ({**BASE, "overrides": ["data.val=split"]}, "overrides must be a mapping, got ['data.val=split']"),
    ({**BASE, "space": [1, 2]}, "space must be a mapping, got [1, 2]"),
    ({**BASE, "objective": "val_loss"}, "'objective' must be a mapping, got 'val_loss'"),
    ({**BASE, "objective": {"direction": "up"}}, "objective.direction='up' is not valid; expected one of 'maximize', 'minimize'"),
    ({**BASE, "sampler": "tpe"}, "sampler must be a mapping, got 'tpe'"),
    ({**BASE, "sampler": {"name": 3}}, "unknown sampler 3; valid choices: grid, random, tpe"),
    ({**BASE, "sampler": {"name": "tpe", "seed": "0"}}, "sampler.seed must be an integer, got '0'"),
    ({**BASE, "pruner": {"name": "median", "warmup_epochs": [1]}}, "pruner.warmup_epochs must be an integer, got [1]"),
    ({**BASE, "base": ["mnist-fast"]}, "base must be a string, got ['mnist-fast']"),
    ({**BASE, "base": ""}, "a sweep spec needs 'base'"),
    ({**BASE, "space": {}}, "the sweep spec's 'space' is empty"),
])
def test_type_errors(raw, message):
    assert refused(raw).startswith(message)


def test_lossless_conversions_and_defaults_by_name():
    spec = spec_from_dict({**BASE, "trials": 3.0, "sampler": {"seed": 4}, "pruner": {"name": "halving", "min_epochs": 2.0}})
    assert spec.trials == 3 and isinstance(spec.trials, int)
    assert spec.sampler == {"name": "tpe", "seed": 4}  # a section without a name is the default sampler
    assert spec.pruner == {"name": "halving", "min_epochs": 2} and isinstance(spec.pruner["min_epochs"], int)


def test_a_bad_section_is_one_cli_line(capsys, tmp_path, make_spec):
    code, _, err = cli(capsys, "sweep", make_spec(pruner={"name": "halving", "reduction_factor": 1}),
                       "--out", tmp_path / "never")
    assert code == 2 and err == ("cnnlab: error: pruner.reduction_factor=1 is out of range; expected an integer "
                                 "in [2, 100]\n")
    assert not (tmp_path / "never").exists()


def test_the_manual_holds_the_generated_reference():
    text = (ROOT / "docs" / "manual" / "tune.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- spec-reference:start -->\n(.*?)<!-- spec-reference:end -->", text, re.S)
    assert block, "docs/manual/tune.md lost its spec-reference markers"
    assert block.group(1) == reference_markdown(), "regenerate it: python -m cnnlab.tune.spec_schema"
    for key, kinds, f, _ in documented_fields():
        assert f.metadata.get("doc"), f"{key} has no doc"
        assert f"| `{key}` | {kinds} |" in block.group(1)
    for section, table in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        assert f"| `{section}.name` |" in block.group(1)
        assert all(f"`{name}`: " in block.group(1) for name in table)


def test_the_engine_is_the_configs():
    """One path for both: the config's messages come from validate_section too."""
    with pytest.raises(CnnlabError, match=r"^train\.epochs=0 is out of range; expected an integer in \[1, 1,000,000\]$"):
        validate_section(TrainConfig, {"epochs": 0}, "train.")
    with pytest.raises(CnnlabError, match=r"unknown config key 'train\.early_stopping\.patince'; did you mean "
                                          r"'train\.early_stopping\.patience'\?"):
        config_from_dict({"train": {"early_stopping": {"patince": 2}}})
    with pytest.raises(CnnlabError, match=r"^train\.early_stopping\.patience=0 is out of range"):
        config_from_dict({"train": {"early_stopping": {"patience": 0}}})
