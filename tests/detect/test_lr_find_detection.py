"""The learning-rate range test goes through the task: a detector's test uses the detector's own
model and loss, and ``schedule.max_lr=find`` trains the run that writing the suggestion in would."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.config import load_config
from cnnlab.train.lr_find import prepare, range_test
from tests.detect.test_distributed_detection import SMALL

pytest.importorskip("torchmetrics")


@pytest.fixture
def small(tmp_path, mnist_root):
    return [*SMALL, "data.scenes.train=96", f"data.cache_dir={tmp_path / 'cache'}", f"data.data_dir={mnist_root}"]


def test_the_first_loss_of_a_detector_range_test_is_the_detector_loss_of_its_first_batch(small):
    cfg, task, data, device = prepare(load_config("detect-mnist-scenes", small))
    result = range_test(cfg, task, data, device, start_lr=1e-6, end_lr=1.0, steps=20)
    # independently: the same seed's detector and the detection loss of the first training batch
    torch.manual_seed(cfg.train.seed)
    model = task.build_model(cfg, data)
    from cnnlab.detect.loss import DetectionLoss

    x, targets = next(data.train.epoch(0))
    model.train()
    pred = model(x).float()
    loss = DetectionLoss(cfg.detect, model.strides)(pred, model.points(), model.point_strides(), targets.boxes,
                                                    targets.labels)["loss"]
    assert result["losses"][0] == pytest.approx(float(loss.detach()), rel=1e-5)
    assert result["steps"] == 20 and result["batch_size"] == 16


def test_max_lr_find_on_a_detector_trains_at_the_suggestion(tmp_path, small):
    from cnnlab.train.run import train

    found = train(load_config("detect-mnist-scenes", [*small, "train.epochs=1", "schedule.max_lr=find"]),
                  tmp_path / "find", quiet=True)
    lr = found["lr_find"]["suggested_lr"]
    assert found["lr_find"]["steps"] > 10 and lr > 0 and "lr_find" in found["phase_seconds"]
    given = train(load_config("detect-mnist-scenes", [*small, "train.epochs=1", f"schedule.peak_lr={lr!r}"]),
                  tmp_path / "given", quiet=True)
    a = torch.load(tmp_path / "find" / "final.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "given" / "final.pt", weights_only=True)["model"]
    for k in a:  # the test drew nothing from the run's RNG
        torch.testing.assert_close(a[k], b[k], msg=k)
    assert found["test_map50"] == given["test_map50"]


def test_lr_find_cli_on_a_detector(tmp_path, small, capsys):
    from cnnlab.cli import main

    code = main(["lr-find", "detect-mnist-scenes", *small, "--steps", "20", "--out", str(tmp_path / "f"), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"] == "detect-mnist-scenes" and result["steps"] == 20
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [".cnnlab-run", "lr_find.json", "lr_find.png"]
