"""benchmarks/cifar_time_to_target.py reads a finished run the way its docstring says."""

import json
from pathlib import Path

import pytest

from cnnlab.train.run import train
from tests.benchmarks import load_script
from tests.train.helpers import toy_config, toy_data


@pytest.fixture(scope="module")
def script():
    return load_script("cifar_time_to_target")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("bench") / "run"
    train(toy_config("data.val=test", "train.tta=flip"), run, data=toy_data(), quiet=True)
    return run


def test_time_to_target_is_the_training_seconds_up_to_the_first_epoch_at_target(script, run_dir):
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["type"] == "epoch"]
    live = [e["val_accuracy"] for e in epochs]
    row = script.run_row(run_dir, target=0.0)  # every epoch reaches 0: the first one counts
    assert [p["epoch"] for p in row["curve"]] == [1, 2, 3]
    assert [p["test_accuracy_live_weights"] for p in row["curve"]] == live
    assert row["seconds_to_target"] == pytest.approx(epochs[0]["seconds"])
    assert row["curve"][-1]["train_seconds_so_far"] == pytest.approx(sum(e["seconds"] for e in epochs), abs=0.06)
    assert row["macs_per_image"] > 0 and row["tta"] == "flip"
    second = script.run_row(run_dir, target=max(live[:2]) + 1e-9) if live[2] > max(live[:2]) else None
    if second:  # reached only at the last epoch: the seconds of all three
        assert second["reached"] and second["curve"][-1]["epoch"] == 3
    missed = script.run_row(run_dir, target=1.01)
    assert not missed["reached"] and missed["seconds_to_target"] is None


def test_only_the_final_test_reaching_the_target_counts_the_whole_run(script, run_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    summary = json.loads((copy / "summary.json").read_text())
    best_live = max(json.loads(line)["val_accuracy"] for line in (copy / "metrics.jsonl").read_text().splitlines()
                    if json.loads(line)["type"] == "epoch")
    summary["test_accuracy"] = min(best_live + 0.01, 1.0)
    (copy / "summary.json").write_text(json.dumps(summary))
    row = script.run_row(copy, target=summary["test_accuracy"])
    assert row["reached"] and row["reached_how"].startswith("final test")
    assert row["images_to_target"] == summary["train_images"]
