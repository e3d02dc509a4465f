"""Tiny sweeps: a 3-class image folder (16x16 PNGs), a 2-block ConvNet, 2 epochs, one thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from cnnlab.cli import main
from tests.conftest import write_folder

BASE = {
    "name": "tiny",
    "data": {"name": "folder", "val": "split", "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8,
             "eval_batch_size": 64},
    "model": {"name": "convnet", "blocks": 2, "filters": [4, 8], "dense": 16},
    "optim": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 2, "threads": 1, "plots": False, "log_every": 1000},
}


@pytest.fixture(scope="session")
def tune_folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("tune") / "images", per_class=16, size=16)


@pytest.fixture
def base_yaml(tmp_path, tune_folder) -> Path:
    base = {**BASE, "data": {**BASE["data"], "root": str(tune_folder), "cache_dir": str(tmp_path / "cache")}}
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


@pytest.fixture
def make_spec(tmp_path, base_yaml):
    """Write a spec YAML: ``make_spec(space={...}, trials=3, sampler={...})`` -> its path."""
    count = [0]

    def make(**fields) -> Path:
        spec = {"name": "tiny-sweep", "base": str(base_yaml), "objective": {"metric": "val_accuracy"},
                "sampler": {"name": "tpe", "seed": 0, "startup_trials": 2}, "pruner": {"name": "none"},
                "trials": 3,
                "space": {"optim.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
                          "model.dense": [8, 16]}}
        spec.update(fields)
        count[0] += 1
        path = tmp_path / f"spec{count[0]}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    return make


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def postgres_url() -> str:
    """The test server: $CNNLAB_TEST_POSTGRES, or the one `.ci/postgres.sh start` runs."""
    return os.environ.get("CNNLAB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:54329/cnnlab_test")
