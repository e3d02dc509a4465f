"""What a call to train() leaves behind: global torch state, honest throughput, curves from little data."""

import json

import torch

from cnnlab.report.curves import plot_curves
from cnnlab.train.run import train
from tests.train.helpers import toy_config, toy_data


def test_train_restores_the_thread_count(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train(toy_config("train.threads=1", "train.epochs=1"), tmp_path / "r", data=toy_data(), quiet=True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_train_restores_the_thread_count_when_it_fails(tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cfg = toy_config("train.threads=1", "model.blocks=4", "model.filters=[4,4,4,4]", "model.padding=0")
        try:
            train(cfg, tmp_path / "r", data=toy_data(), quiet=True)  # the model cannot take 8x8 images
        except ValueError:
            pass
        assert torch.get_num_threads() == 2 and not (tmp_path / "r").exists()
    finally:
        torch.set_num_threads(before)


def test_a_batch_larger_than_the_data_is_clamped_and_counted_honestly(tmp_path, capsys):
    summary = train(toy_config("data.batch_size=100000", "train.epochs=2"), tmp_path / "big", data=toy_data(),
                    quiet=True)
    err = capsys.readouterr().err
    assert "data.batch_size=100000 is larger than the 72 training images" in err
    assert summary["batch_size"] == 72 and summary["steps"] == 2
    on_disk = json.loads((tmp_path / "big" / "summary.json").read_text())
    assert on_disk["batch_size"] == 72 and on_disk["train_images"] == 144
    # images per second counts the 144 images seen, not steps x data.batch_size (2e8)
    assert summary["images_per_second"] * summary["train_seconds"] < 200


def test_images_seen_survive_a_resume(tmp_path):
    from tests.train.test_trainer import StopAt

    cfg = toy_config("train.epochs=2", "data.batch_size=40")  # 72 images: one batch of 40 per epoch
    train(cfg, tmp_path / "cut", data=toy_data(), quiet=True, callbacks=[StopAt(1)])
    summary = train(cfg, tmp_path / "cut", data=toy_data(), quiet=True, resume=True)
    assert summary["steps"] == 2 and summary["train_images"] == 80


def test_curves_from_a_missing_or_empty_metrics_file(tmp_path):
    assert plot_curves(tmp_path / "missing.jsonl", tmp_path / "a.png") is None
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert plot_curves(empty, tmp_path / "b.png") is None
    one_epoch = tmp_path / "epoch.jsonl"
    one_epoch.write_text(json.dumps({"type": "epoch", "epoch": 1, "step": 3, "train_loss": 1.0,
                                     "train_accuracy": 0.5, "val_loss": None, "val_accuracy": None}) + "\n{trunc")
    assert plot_curves(one_epoch, tmp_path / "c.png").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "empty.jsonl", "epoch.jsonl"]
