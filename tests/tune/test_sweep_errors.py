"""Bad sweep input: one line starting `cnnlab: error:`, exit 2, nothing created, nothing lost from a study."""

from __future__ import annotations

import sys

import optuna
import pytest

from tests.tune.conftest import cli

LR = {"type": "float", "low": 1e-3, "high": 3e-2, "log": True}


def check_one_line_error(capsys, tmp_path, argv, *expected):
    out = tmp_path / "never"
    code, stdout, err = cli(capsys, "sweep", *argv, "--out", out)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnlab: error: "), err
    for text in expected:
        assert text in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


@pytest.mark.parametrize("space, expected", [
    ({"optim.lr_": LR}, ["unknown config key 'optim.lr_'", "did you mean 'optim.lr'?"]),
    ({"trian.epochs": [1, 2]}, ["unknown config key 'trian'", "did you mean"]),
    ({"model.fliters": [[4, 8]]}, ["model 'convnet' has no option 'fliters'", "did you mean 'model.filters'?"]),
    ({"optim.name": ["adam", "adamm"]}, ["optim.name='adamm' is not valid"]),
    ({"optim.lr": {"type": "float", "low": 0.1, "high": 0.01}}, ["range is empty", "low=0.1 is above high=0.01"]),
    ({"optim.lr": {"type": "float", "low": 0.1, "high": 0.1}}, ["range is empty"]),
    ({"optim.lr": {"type": "float", "low": 0.0, "high": 0.1, "log": True}}, ["log-scale range needs low > 0"]),
    ({"optim.lr": {"type": "float", "low": -1.0, "high": 0.1}}, ["optim.lr=-1.0 is out of range"]),
    ({"model.dense": []}, ["list of choices is empty"]),
    ({"data.batch_size": {"type": "int", "low": 8, "high": 16, "step": 32}}, ["step=32 is larger than the range"]),
    ({"optim.lr": {"type": "float", "lo": 0.1, "high": 0.2}}, ["unknown option 'lo'", "did you mean 'low'?"]),
    ({"optim.momentum": {"type": "float", "low": 0.5, "high": 0.9, "when": {"optim.nme": "sgd"}}},
     ["'when' names 'optim.nme'"]),
    ({"optim.name": ["adam"], "optim.momentum": {"type": "float", "low": 0.5, "high": 0.9,
                                                 "when": {"optim.name": "sgd"}}},
     ["'when' value 'sgd' is not among the choices"]),
    ({}, ["'space' is empty"]),
])
def test_bad_search_space(capsys, tmp_path, make_spec, space, expected):
    check_one_line_error(capsys, tmp_path, [make_spec(space=space)], *expected)


def test_bad_spec_sections(capsys, tmp_path, make_spec):
    check_one_line_error(capsys, tmp_path, [make_spec(sampler={"name": "tpee"})], "unknown sampler 'tpee'",
                         "did you mean 'tpe'?")
    check_one_line_error(capsys, tmp_path, [make_spec(pruner={"name": "median", "warmup": 1})],
                         "unknown pruner 'median' option 'warmup'")
    check_one_line_error(capsys, tmp_path, [make_spec(objective={"metric": "val_acc"})],
                         "objective metric 'val_acc'", "did you mean 'val_accuracy'?")
    check_one_line_error(capsys, tmp_path, [make_spec(overrides={"data.val": "none"})],
                         "needs validation data", "data.val: split")
    check_one_line_error(capsys, tmp_path, [make_spec(spce={})], "unknown sweep spec key 'spce'",
                         "did you mean 'space'?")
    check_one_line_error(capsys, tmp_path, ["sweep-mnist-quik"], "no sweep spec or YAML file named 'sweep-mnist-quik'",
                         "did you mean 'sweep-mnist-quick'?")
    check_one_line_error(capsys, tmp_path, [make_spec(), "--trials", "0"], "--trials 0 is out of range")
    check_one_line_error(capsys, tmp_path, [make_spec(), "--trials", "1000000"], "--trials 1000000 is out of range")
    # 100,000 workers once forked a process storm: bounded like threads, before anything starts.
    check_one_line_error(capsys, tmp_path, [make_spec(), "--workers", "100000"], "--workers 100000 is out of range")
    check_one_line_error(capsys, tmp_path, [make_spec(), "--timeout", "inf"], "--timeout must be a positive number")
    check_one_line_error(capsys, tmp_path, [make_spec(), "train.epoch=2"], "unknown config key 'train.epoch'",
                         "did you mean 'train.epochs'?")
    check_one_line_error(capsys, tmp_path, [make_spec(), "model.dense=8"], "'model.dense' is both fixed")


def test_grid_too_large_for_trials(capsys, tmp_path, make_spec):
    spec = make_spec(sampler={"name": "grid"}, trials=4, space={"model.dense": [4, 8, 16], "optim.lr": [0.01, 0.02, 0.03]})
    check_one_line_error(capsys, tmp_path, [spec], "the grid has 9 points but trials is 4", "raise --trials to 9")
    spec = make_spec(sampler={"name": "grid"}, trials=100, space={"optim.lr": LR})
    check_one_line_error(capsys, tmp_path, [spec], "grid sampler needs a finite set for 'optim.lr'")


@pytest.mark.parametrize("url, expected", [
    ("postgres//db", ["storage URL 'postgres//db' is malformed", "postgresql://"]),
    ("redis://localhost/0", ["names the backend 'redis'"]),
    ("sqlite:////no/such/folder/study.db", ["the folder /no/such/folder does not exist"]),
    ("postgresql://nobody:secret@127.0.0.1:1/sweeps", ["cannot open the study storage",
                                                       "postgresql://nobody:***@127.0.0.1:1/sweeps"]),
])
def test_bad_storage_url(capsys, tmp_path, make_spec, url, expected):
    line = check_one_line_error(capsys, tmp_path, [make_spec(), "--storage", url], *expected)
    assert "secret" not in line


def test_existing_study_with_another_space_is_refused_unless_resume(capsys, tmp_path, make_spec):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_spec(trials=1)
    assert cli(capsys, "sweep", first, "--storage", storage, "--study", "s", "--out", tmp_path / "a", "--quiet")[0] == 0
    other = make_spec(trials=2, space={"optim.lr": LR})
    check_one_line_error(capsys, tmp_path, [other, "--storage", storage, "--study", "s"],
                         "study 's' already exists with another search space", "--resume")
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 1  # nothing lost or added
    code, _, err = cli(capsys, "sweep", other, "--storage", storage, "--study", "s", "--resume",
                       "--out", tmp_path / "b", "--quiet")
    assert code == 0, err
    assert len(optuna.load_study(study_name="s", storage=storage).trials) == 2


def test_status_and_resume_of_what_is_not_a_sweep(capsys, tmp_path):
    (tmp_path / "plain").mkdir()
    for argv in (["--status", tmp_path / "plain"], ["--resume", tmp_path / "plain"]):
        code, _, err = cli(capsys, "sweep", *argv)
        assert code == 2 and err.startswith("cnnlab: error: ") and "not a sweep directory" in err


def test_without_optuna_the_sweep_says_what_to_install(capsys, tmp_path, make_spec, monkeypatch):
    """The core installs without the sweep extra; a sweep then names the extra in one line (exit 2)."""
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now fails as if it were not installed
    check_one_line_error(capsys, tmp_path, [make_spec()], "pip install 'cnnlab[sweep]'")
