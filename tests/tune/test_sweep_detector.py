"""A sweep over a detector optimises the task's headline metric, validation mAP@0.5 (issue 19)."""

from __future__ import annotations

import json

import optuna
import pytest

from tests.tune.conftest import cli

pytest.importorskip("torchmetrics")

SMALL = {"data.scenes.size": 64, "data.scenes.train": 96, "data.scenes.test": 32, "data.image_size": 64,
         "data.val_fraction": 0.25, "data.batch_size": 16, "data.eval_batch_size": 64, "train.epochs": 1,
         "train.threads": 1, "train.plots": False, "train.log_every": 1000, "model.width": 8,
         "detect.channels": 16}


def test_a_sweep_over_detect_mnist_scenes_ranks_its_trials_by_validation_map(tmp_path, capsys, mnist_root):
    spec = {"name": "det-sweep", "base": "detect-mnist-scenes",
            "overrides": {**SMALL, "data.cache_dir": str(tmp_path / "cache"), "data.data_dir": str(mnist_root)},
            "sampler": {"name": "grid"}, "pruner": {"name": "none"}, "trials": 4,
            "space": {"optim.lr": [3e-4, 1e-3, 3e-3, 1e-2]}}
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    out = tmp_path / "sweep"
    code, stdout, err = cli(capsys, "sweep", path, "--out", out, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["trials"]["complete"] == 4
    study = optuna.load_study(study_name="det-sweep", storage=f"sqlite:///{out / 'study.db'}")
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    values = {}
    for t in study.trials:
        run = out / "trials" / f"{t.number:04d}"
        epochs = [json.loads(x) for x in open(run / "metrics.jsonl") if '"epoch"' in x]
        epochs = [e for e in epochs if e["type"] == "epoch"]
        assert t.value == epochs[-1]["val_map50"]  # the objective is the detector's validation mAP@0.5
        assert t.user_attrs["test_metric"] == "test_map50"
        assert t.user_attrs["test_map50"] == json.loads((run / "summary.json").read_text())["test_map50"]
        values[t.number] = t.value
    assert summary["best_trial"] == max(values, key=values.get)
    assert summary["best_value"] == pytest.approx(max(values.values()))
    code, stdout, _ = cli(capsys, "sweep", "--status", out)
    assert code == 0 and "test map50" in stdout


def test_a_detector_sweep_refuses_a_classification_objective(tmp_path, capsys):
    spec = {"name": "det-sweep", "base": "detect-mnist-scenes", "objective": {"metric": "val_accuracy"},
            "space": {"optim.lr": [1e-3, 1e-2]}}
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec))
    code, _, err = cli(capsys, "sweep", path, "--out", tmp_path / "sweep")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "for task=detect" in err and "val_map50" in err and not (tmp_path / "sweep").exists()


def test_a_space_that_sets_what_the_task_ignores_is_refused_before_any_trial(tmp_path, capsys):
    spec = {"name": "det-sweep", "base": "detect-mnist-scenes", "space": {"data.augment.rotate": [0.0, 15.0]}}
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec))
    code, _, err = cli(capsys, "sweep", path, "--out", tmp_path / "sweep")
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "sweep").exists()
    assert "data.augment.rotate is not supported with task=detect: rotated boxes" in err
