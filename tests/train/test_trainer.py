"""The training loop: summary contents, exact resume, non-finite losses, Ctrl-C, early stopping."""

import json

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.train.callbacks import Callback
from cnnlab.checkpoint import load_checkpoint
from cnnlab.train.run import train
from tests.train.helpers import toy_config, toy_data


def test_run_directory_holds_everything(tmp_path):
    summary = train(toy_config("train.plots=true"), tmp_path / "run", data=toy_data(), quiet=True)
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "best.pt", "last.pt", "final.pt", "curves.png"):
        assert (run / name).is_file(), name
    on_disk = json.loads((run / "summary.json").read_text())
    for key in ("test_accuracy", "best_val_accuracy", "train_seconds", "epochs", "params", "device", "versions",
                "seed"):
        assert key in on_disk
    assert 0.0 <= on_disk["test_accuracy"] <= 1.0 and on_disk["epochs"] == 3 and summary["status"] == "completed"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in lines if r["type"] == "step"]
    epochs = [r for r in lines if r["type"] == "epoch"]
    assert len(epochs) == 3 and {"loss", "accuracy", "lr", "grad_norm", "images_per_second"} <= set(steps[0])


def test_learns_the_toy_task(tmp_path):
    summary = train(toy_config("train.epochs=6"), tmp_path / "r", data=toy_data(n_train=160), quiet=True)
    assert summary["test_accuracy"] > 0.9


class StopAt(Callback):
    """Simulates Ctrl-C at a given step (the handler sets the same flag)."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, metrics):
        if trainer.step == self.step:
            trainer._interrupted = True


@pytest.mark.parametrize("stop_step", [5, 8])  # mid-epoch and exactly at an epoch boundary region
def test_resume_reproduces_an_uninterrupted_run_exactly(tmp_path, stop_step):
    data = toy_data()
    cfg = toy_config("train.epochs=3")  # 72 train images / 16 = 4 steps per epoch -> 12 steps
    train(cfg, tmp_path / "full", data=data, quiet=True)
    partial = train(cfg, tmp_path / "cut", data=data, quiet=True, callbacks=[StopAt(stop_step)])
    assert partial["status"] == "interrupted" and partial["test_accuracy"] is None
    resumed = train(cfg, tmp_path / "cut", data=data, quiet=True, resume=True)
    assert resumed["status"] == "completed" and resumed["steps"] == 12
    full = load_checkpoint(tmp_path / "full" / "last.pt")["model"]
    again = load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    for key in full:
        assert torch.equal(full[key], again[key]), key
    # The metrics file has no duplicated steps after the resume.
    steps = [json.loads(l)["step"] for l in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
             if json.loads(l)["type"] == "step"]
    assert steps == sorted(set(steps))


class PoisonAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, metrics):
        if trainer.step == self.step:
            with torch.no_grad():
                next(trainer.model.parameters()).fill_(float("nan"))


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = toy_config("train.epochs=3")
    summary = train(cfg, tmp_path / "nan", data=toy_data(), quiet=True, callbacks=[PoisonAt(6)])
    assert summary["status"] == "nonfinite_loss" and summary["nonfinite_step"] == 7
    state = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert state["epoch"] == 1  # saved at the end of epoch 1, before the poisoned step
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_early_stopping_stops_and_restores_best(tmp_path):
    # lr is so small nothing improves after the first epoch beyond min_delta.
    cfg = toy_config("train.epochs=20", "optim.lr=1e-7", "schedule.name=constant",
                     "train.early_stopping.patience=2", "train.early_stopping.min_delta=0.5")
    summary = train(cfg, tmp_path / "es", data=toy_data(), quiet=True)
    assert summary["status"] == "early_stopping" and summary["epochs"] == 3
    assert summary["tested_weights"].startswith("best (epoch 1)")


def test_early_stopping_needs_validation(tmp_path):
    with pytest.raises(CnnlabError, match="needs validation data"):
        train(toy_config("data.val=none", "train.early_stopping.patience=2"), tmp_path / "x", data=toy_data(),
              quiet=True)


def test_existing_output_is_refused_and_kept(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(CnnlabError, match="already exists.*--overwrite"):
        train(toy_config(), out, data=toy_data(), quiet=True)
    with pytest.raises(CnnlabError, match="not a cnnlab run directory"):
        train(toy_config(), out, data=toy_data(), quiet=True, overwrite=True)
    assert (out / "precious.txt").read_text() == "keep me"


def test_image_size_the_model_cannot_take(tmp_path):
    cfg = toy_config("model.blocks=4", "model.filters=[4,4,4,4]", "model.padding=0")
    with pytest.raises(CnnlabError, match="cannot take 8x8 images"):
        train(cfg, tmp_path / "small", data=toy_data(), quiet=True)


def test_l1_l2_penalties_shrink_weights(tmp_path):
    plain = train(toy_config("schedule.name=constant"), tmp_path / "a", data=toy_data(), quiet=True)
    l2 = train(toy_config("schedule.name=constant", "optim.l2=0.05"), tmp_path / "b", data=toy_data(), quiet=True)
    def norm(run):
        state = load_checkpoint(tmp_path / run / "last.pt")["model"]
        return sum(v.pow(2).sum() for k, v in state.items() if k.endswith("weight") and v.ndim > 1)
    assert norm("b") < norm("a") and plain["status"] == l2["status"] == "completed"


def test_final_fit_trains_on_train_plus_validation(tmp_path):
    summary = train(toy_config("data.final_fit=true", "train.epochs=1"), tmp_path / "ff", data=toy_data(), quiet=True)
    assert summary["split_sizes"] == {"train": 96, "val": 0, "test": 48} and summary["best_val_accuracy"] is None
