"""`cnnlab ablate` and `cnnlab cv` on a detector read its headline metric, test mAP@0.5 (issue 19)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from cnnlab.config import load_config
from cnnlab.tune.ablation import TECHNIQUES, plan
from cnnlab.tune.cv import shuffled_folds
from tests.tune.conftest import cli

pytest.importorskip("torchmetrics")

# Big enough that the detector learns something in 4 epochs (mAP@0.5 > 0), so equal numbers mean something.
SMALL = {"data.scenes.size": 64, "data.scenes.train": 160, "data.scenes.test": 32, "data.scenes.digits": "1-2",
         "data.image_size": 64, "data.val_fraction": 0.25, "data.batch_size": 16, "data.eval_batch_size": 64,
         "train.epochs": 4, "train.threads": 1, "train.plots": False, "train.log_every": 1000, "model.width": 8,
         "detect.channels": 16, "optim.lr": 0.01}


def overrides(tmp_path, mnist_root, **more) -> list[str]:
    items = {**SMALL, "data.cache_dir": str(tmp_path / "cache"), "data.data_dir": str(mnist_root), **more}
    return [f"{k}={v}" for k, v in items.items()]


def test_a_detector_ablation_reports_each_variants_test_map50(tmp_path, capsys, mnist_root):
    out = tmp_path / "abl"
    code, stdout, err = cli(capsys, "ablate", "detect-mnist-scenes", *overrides(tmp_path, mnist_root),
                            "--techniques", "weight_decay,augmentation", "--out", out, "--json", "--quiet")
    assert code == 0, err
    record = json.loads(stdout)
    assert record == json.loads((out / "summary.json").read_text())
    assert (record["metric"], record["direction"], record["task"]) == ("test_map50", "max", "detect")
    assert "test_accuracy_mean" not in record["variants"][0]  # the accuracy keys are a classifier's
    names = [v["variant"] for v in record["variants"]]
    assert names == ["full", "plain", "full - weight_decay", "full - augmentation",
                     "plain + weight_decay", "plain + augmentation"]
    values = {}
    for v in record["variants"]:
        (run,) = v["runs"]
        summary = json.loads(open(run["run_dir"] + "/summary.json").read())  # what the variant's run reported
        assert run["test_map50"] == summary["test_map50"] == v["test_metric_mean"] == v["test_metric_median"]
        assert v["test_metric_std"] == 0.0
        values[v["variant"]] = summary["test_map50"]
        config = yaml.safe_load(open(run["run_dir"] + "/config.yaml"))
        if v["variant"] in ("full", "full - weight_decay"):
            assert config["data"]["augment"]["translate"] == 0.05  # the recipe's own, box-aware augmentation
        if v["variant"] in ("plain", "plain + weight_decay"):
            assert config["data"]["augment"]["translate"] == 0.0
    assert any(x > 0 for x in values.values()), values  # the detector learnt: the comparison is not 0 == 0
    for v in record["variants"][2:]:
        ref = values["full" if v["kind"] == "leave-one-out" else "plain"]
        assert v["delta_metric"] == pytest.approx(values[v["variant"]] - ref)
        assert v["effect"] == ("better" if v["delta_metric"] > 0 else "worse" if v["delta_metric"] < 0 else "same")
    assert record["test_map50"] == values["full"]
    assert (out / "ablation.png").stat().st_size > 5000

    from cnnlab.tune.ablation import format_table

    table = format_table(record)
    assert "test mAP@0.5" in table.splitlines()[0] and "accuracy" not in table


def test_the_default_set_for_a_detector_leaves_out_what_detection_ignores(tmp_path, capsys, mnist_root, monkeypatch):
    _, info = plan(load_config("detect-mnist-scenes"), list(TECHNIQUES))
    scoped = sorted(n for n, t in info.items() if t.get("out_of_scope"))
    assert scoped == ["label_smoothing"]
    assert info["label_smoothing"]["reason"].startswith("train.label_smoothing is not supported with task=detect")
    assert info["augmentation"]["applicable"] and info["weight_decay"]["applicable"]
    # without a recipe of its own, a detector's default augmentation is box-aware (no crop padding, no rotation)
    _, bare = plan(load_config("detect-mnist-scenes", ["data.augment.translate=0"]), ["augmentation"])
    assert bare["augmentation"]["on"] == {"data.augment.scale": 0.1, "data.augment.translate": 0.05}
    _, photos = plan(load_config("detect-raccoon"), ["augmentation"])
    assert photos["augmentation"]["applicable"]

    trained = []

    def fake_train(cfg, run_dir, **kwargs):  # the plan and the notice, without training 16 detectors
        trained.append(cfg)
        return {"test_map50": 0.5, "train_seconds": 1.0, "status": "completed"}

    monkeypatch.setattr("cnnlab.tune.ablation.train", fake_train)
    code, stdout, err = cli(capsys, "ablate", "detect-mnist-scenes", *overrides(tmp_path, mnist_root),
                            "--out", tmp_path / "abl", "--json", "--quiet")
    assert code == 0, err
    notice = [line for line in err.splitlines() if "leaves out" in line]
    assert len(notice) == 1 and "label_smoothing" in notice[0] and "train.label_smoothing" in notice[0]
    assert all(cfg.train.label_smoothing == 0.0 and cfg.data.augment.rotate == 0.0 for cfg in trained)
    record = json.loads(stdout)
    assert record["techniques"]["label_smoothing"]["applicable"] is False
    usable = [n for n, t in record["techniques"].items() if t["applicable"]]
    assert len(trained) == 2 + 2 * len(usable) and "label_smoothing" not in usable


@pytest.mark.parametrize("named, key", [("label_smoothing", "train.label_smoothing"),
                                        ("adam,pca_lighting", "data.augment.pca_lighting"),
                                        ("random_resized_crop", "data.augment.random_resized_crop")])
def test_a_named_technique_the_detector_ignores_is_refused_in_one_line(tmp_path, capsys, mnist_root, named, key):
    code, _, err = cli(capsys, "ablate", "detect-mnist-scenes", *overrides(tmp_path, mnist_root),
                       "--techniques", named, "--out", tmp_path / "abl")
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("cnnlab: error: technique '")
    assert f"{key} is not supported with task=detect" in err and not (tmp_path / "abl").exists()


def test_shuffled_folds_partition_the_images_evenly_and_by_seed():
    folds = shuffled_folds(11, 3, seed=4)
    assert sorted(np.concatenate(folds).tolist()) == list(range(11))
    assert sorted(len(f) for f in folds) == [3, 4, 4]
    assert [f.tolist() for f in folds] == [f.tolist() for f in shuffled_folds(11, 3, seed=4)]
    assert [f.tolist() for f in folds] != [f.tolist() for f in shuffled_folds(11, 3, seed=5)]
    assert folds[0].tolist() != [0, 3, 6, 9]  # shuffled, not dealt in file order


def test_cv_of_a_detector_scores_each_held_out_fold_with_map50(tmp_path, capsys, mnist_root):
    import torch

    from cnnlab.data.detection import read_detection_dataset
    from cnnlab.detect.batches import BoxTargets
    from cnnlab.detect.evaluate import evaluate_detector
    from cnnlab.runs import load_run

    out = tmp_path / "cv"
    argv = overrides(tmp_path, mnist_root)
    code, stdout, err = cli(capsys, "cv", "detect-mnist-scenes", *argv, "--folds", 2, "--out", out, "--json")
    assert code == 0, err
    record = json.loads(stdout)
    assert record["metric"] == "test_map50" and "mean_accuracy" not in record
    held_out = json.loads((out / "folds.json").read_text())["held_out"]
    n = SMALL["data.scenes.train"]
    assert sorted(i for f in held_out for i in f) == list(range(n)) and abs(len(held_out[0]) - len(held_out[1])) <= 1
    # Independent recomputation: the scenes read afresh, each fold's model scored on its held-out images.
    cfg = load_config("detect-mnist-scenes", argv)
    train, *_ = read_detection_dataset(cfg.data)
    values = []
    for row, held in zip(record["per_fold"], held_out):
        assert row["held_out_images"] == len(held) and row["train_images"] == n - len(held)
        run = load_run(row["run_dir"], task="detect")
        x = train.images[held].float() / 255
        x = (x - torch.tensor(run.mean).view(1, -1, 1, 1)) / torch.tensor(run.std).view(1, -1, 1, 1)
        targets = BoxTargets([train.boxes[i] for i in held], [train.labels[i] for i in held])
        result = evaluate_detector(run.model, [(x, targets)], cfg.detect, run.classes)
        assert row["test_map50"] == pytest.approx(result["map50"], abs=1e-6)
        summary = json.loads(open(row["run_dir"] + "/summary.json").read())
        assert summary["test_map50"] == row["test_map50"] and summary["test_split"].startswith("held-out fold")
        values.append(result["map50"])
    assert any(v > 0 for v in values), values
    assert record["test_metric_mean"] == pytest.approx(np.mean(values))
    assert record["test_metric_std"] == pytest.approx(np.std(values, ddof=1))
    assert record["test_map50"] == record["test_metric_mean"]

    code, stdout, _ = cli(capsys, "cv", "detect-mnist-scenes", *argv, "--folds", 2, "--out", out, "--overwrite")
    assert code == 0 and "mAP@0.5" in stdout and "mean mAP@0.5" in stdout
