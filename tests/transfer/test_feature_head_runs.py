"""A run trained with ``model.features_from`` is a head on cached features: the commands that need images
say so in one line (and how to get a model that takes images), the config records the head that trained,
and ``cnnlab features`` refuses ``data.limit_train`` instead of ignoring it."""

from __future__ import annotations

import json

import pytest
import yaml

from cnnlab.cli import main
from tests.cli_checks import cli
from tests.conftest import write_folder


@pytest.fixture(scope="module")
def head_run(mnist_run, tmp_path_factory):
    """(backbone run, feature cache, head run) over a tiny folder of 16x16 pattern images."""
    root = tmp_path_factory.mktemp("heads")
    folder = write_folder(root / "images", per_class=8, size=16, colour=False)
    data = ["data.name=folder", f"data.root={folder}", f"data.cache_dir={root / 'decoded'}", "data.val=none"]
    assert main(["features", str(mnist_run), "--data", "mnist-fast", "--out", str(root / "feats"), *data]) == 0
    head = root / "head"
    assert main(["train", "mnist-fast", f"model.features_from={root / 'feats'}", "train.epochs=1", *data,
                 "train.plots=false", "train.early_stopping.patience=null", "--out", str(head), "--quiet"]) == 0
    return mnist_run, root / "feats", head, folder


@pytest.mark.parametrize("command", ["predict", "eval", "explain", "export"])
def test_commands_that_need_images_explain_a_feature_head(head_run, tmp_path, capsys, command):
    backbone, feats, head, folder = head_run
    image = next((folder / "square").iterdir())
    argv = {"predict": ["predict", head, image], "eval": ["eval", head],
            "explain": ["explain", head, "--index", "0", "--out", tmp_path / "x"],
            "export": ["export", head, "--format", "onnx", "--out", tmp_path / "m.onnx"]}[command]
    code, _, err = cli(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and "internal error" not in err, err
    assert "head trained on cached features" in err and f"model.weights={backbone}" in err, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "m.onnx").exists()


def test_the_advice_trains_a_model_that_takes_images(head_run, tmp_path, capsys):
    backbone, _, _, folder = head_run
    out = tmp_path / "live"
    code, _, err = cli(capsys, "train", "mnist-fast", "data.name=folder", f"data.root={folder}", f"model.weights={backbone}",
                       "model.freeze=all", "train.epochs=1", "train.plots=false", "--out", out, "--quiet")
    assert code == 0, err
    code, stdout, err = cli(capsys, "predict", out, next((folder / "square").iterdir()), "--json")
    assert code == 0 and json.loads(stdout)["predictions"], err


def test_a_feature_head_records_the_head_not_the_presets_network(head_run, capsys):
    _, feats, head, _ = head_run
    model = yaml.safe_load((head / "config.yaml").read_text())["model"]
    assert model == {"name": "feature_head", "features_from": str(feats)}
    assert json.loads((head / "summary.json").read_text())["model"] == "feature_head"
    code, stdout, err = cli(capsys, "profile", head, "--json")  # the head itself is still counted
    assert code == 0, err


def test_the_notice_names_what_features_from_drops(head_run, tmp_path, capsys):
    _, feats, _, folder = head_run
    code, _, err = cli(capsys, "train", "mnist-fast", f"model.features_from={feats}", "model.name=resnet18",
                       "data.name=folder", f"data.root={folder}", "data.val=none", "train.epochs=1", "train.plots=false", "--out", tmp_path / "h")
    assert code == 0, err
    assert "model.name=resnet18" in err and "do not apply" in err, err


def test_features_refuses_limit_train(mnist_run, tmp_path, capsys):
    code, _, err = cli(capsys, "features", mnist_run, "--data", "mnist-fast", "--out", tmp_path / "f",
                       "data.limit_train=100")
    assert code == 2 and err.count("\n") == 1 and "data.limit_train=100 does not apply" in err, err
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("command", ["train", "cv", "ensemble"])
def test_limit_train_below_the_class_count_is_refused(mnist_run, tmp_path, capsys, command):
    argv = {"train": ["train", "mnist-fast"], "cv": ["cv", "mnist-fast", "--folds", "2"],
            "ensemble": ["ensemble", "--bagging", "2", "mnist-fast"]}[command]
    code, _, err = cli(capsys, *argv, "data.limit_train=5", "--out", tmp_path / "o")
    assert code == 2 and err.count("\n") == 1, err
    assert "data.limit_train=5 is fewer than the 10 classes" in err, err
    assert not (tmp_path / "o").exists()
