"""Spec mappings whose validated :class:`SweepSpec` is frozen in ``data/spec_golden.json``.

The golden file was written by the hand-written validator that ``spec_schema`` replaced
(``python -m tests.tune.spec_cases > tests/tune/data/spec_golden.json`` at that commit), so a test
comparing today's parser against it checks the rewrite against an independent reference.
"""

from __future__ import annotations

import dataclasses
import json

SPACE = {"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}, "optim.name": ["adam", "sgd"]}
BASE = {"base": "mnist-fast", "overrides": {"data.val": "split"}, "space": SPACE}

CASES = {
    "minimal": BASE,
    "random": {**BASE, "sampler": {"name": "random", "seed": 7}},
    "random-no-seed": {**BASE, "sampler": {"name": "random"}},
    "grid": {**BASE, "sampler": {"name": "grid", "seed": 3}, "trials": 4,
             "space": {"optim.name": ["adam", "sgd"], "train.epochs": [1, 2]}},
    "tpe-startup": {**BASE, "sampler": {"name": "tpe", "startup_trials": 0}},
    "median": {**BASE, "pruner": {"name": "median", "startup_trials": 2, "warmup_epochs": 1}},
    "median-defaults": {**BASE, "pruner": {"name": "median"}},
    "halving": {**BASE, "pruner": {"name": "halving", "min_epochs": 2, "reduction_factor": 2}},
    "hyperband": {**BASE, "pruner": {"name": "hyperband"}},
    "none": {**BASE, "pruner": {"name": "none"}, "sampler": {"name": "tpe", "seed": 0}},
    "objective-loss": {**BASE, "objective": {"metric": "val_loss"}},
    "objective-full": {**BASE, "objective": {"metric": "train_accuracy", "direction": "minimize"}},
    "named": {**BASE, "name": "lr-search", "description": "  a  spread\n out   text ", "trials": 1, "timeout": 2.5},
    "int-timeout": {**BASE, "timeout": 60},
    "empty-sections": {**BASE, "sampler": {}, "pruner": None, "objective": None, "overrides": {"data.val": "split"}},
}


def freeze(spec) -> dict:
    """A JSON-able dict of every field of a :class:`SweepSpec` (its Params included)."""
    return json.loads(json.dumps(dataclasses.asdict(spec), sort_keys=True, default=str))


def frozen_outputs() -> dict:
    """Every case and every shipped spec, validated and frozen."""
    from cnnlab.tune.spec import load_spec, shipped_spec_names, spec_from_dict

    out = {f"case:{name}": freeze(spec_from_dict(raw)) for name, raw in CASES.items()}
    out.update({f"shipped:{name}": freeze(load_spec(name)) for name in shipped_spec_names()})
    return out


if __name__ == "__main__":
    print(json.dumps(frozen_outputs(), indent=1, sort_keys=True))
