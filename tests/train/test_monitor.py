"""Monitor: one rule for "better" shared by the best checkpoint, early stopping and the plateau schedule."""

import json
import math

import pytest
import torch

from cnnlab.config import EarlyStopConfig, ScheduleConfig
from cnnlab.errors import CnnlabError
from cnnlab.train.callbacks import EarlyStopping
from cnnlab.train.monitor import Monitor
from cnnlab.train.run import train
from cnnlab.train.schedule import LRSchedule
from tests.train.helpers import toy_config, toy_data


def test_min_mode_lower_is_better_and_ties_are_not():
    m = Monitor("val_loss", "min")
    assert m.is_better(0.5, 1.0) and not m.is_better(1.0, 1.0) and not m.is_better(1.5, 1.0)


def test_max_mode_higher_is_better_and_ties_are_not():
    m = Monitor("val_accuracy", "max")
    assert m.is_better(0.9, 0.8) and not m.is_better(0.8, 0.8) and not m.is_better(0.7, 0.8)


@pytest.mark.parametrize("mode, best, enough, too_little", [("min", 1.0, 0.75, 0.85), ("max", 0.5, 0.75, 0.65)])
def test_min_delta_must_be_exceeded(mode, best, enough, too_little):
    m = Monitor("metric", mode, min_delta=0.2)
    assert m.is_better(enough, best) and not m.is_better(too_little, best)


def test_none_and_nan():
    for m in (Monitor("val_loss", "min"), Monitor("val_accuracy", "max")):
        assert m.is_better(0.3, None)  # anything beats "no best yet"
        assert not m.is_better(None, 0.3) and not m.is_better(None, None)  # the metric was not measured
        assert not m.is_better(math.nan, 0.3) and not m.is_better(math.nan, None)


def test_from_name_reads_the_direction():
    assert Monitor.from_name("val_accuracy") == Monitor("val_accuracy", "max")
    assert Monitor.from_name("val_loss", min_delta=0.1) == Monitor("val_loss", "min", 0.1)
    with pytest.raises(CnnlabError, match="'val_f1'"):
        Monitor.from_name("val_f1")


@pytest.mark.parametrize("kwargs, message", [({"mode": "up"}, "'min' or 'max'"),
                                             ({"mode": "min", "min_delta": -0.1}, "min_delta"),
                                             ({"mode": "min", "min_delta": math.inf}, "min_delta")])
def test_bad_monitor_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(CnnlabError, match=message):
        Monitor("val_loss", **kwargs)


class FakeTrainer:
    stop_reason = None

    def notice(self, message):
        pass


@pytest.mark.parametrize("monitor, values, stops_after", [
    ("val_loss", [1.0, 0.8, 0.75, 0.79, 0.6], 4),  # 0.75 and 0.79 are within min_delta of 0.8
    ("val_accuracy", [0.5, 0.7, 0.75, 0.6, 0.9], 4),
])
def test_early_stopping_uses_the_monitor_direction_and_min_delta(monitor, values, stops_after):
    stopper = EarlyStopping(EarlyStopConfig(patience=2, min_delta=0.1, monitor=monitor))
    trainer = FakeTrainer()
    for epoch, value in enumerate(values, 1):
        stopper.on_epoch_end(trainer, {monitor: value})
        if trainer.stop_reason:
            break
    assert trainer.stop_reason == "early_stopping" and epoch == stops_after


def test_early_stopping_state_round_trip_and_old_checkpoints():
    stopper = EarlyStopping(EarlyStopConfig(patience=3, monitor="val_loss"))
    stopper.on_epoch_end(FakeTrainer(), {"val_loss": 0.5})
    again = EarlyStopping(EarlyStopConfig(patience=3, monitor="val_loss"))
    again.load_state_dict(json.loads(json.dumps(stopper.state_dict())))
    assert again.best == 0.5
    again.load_state_dict({"best": -0.5, "bad_epochs": 1})  # before Monitor: a loss was stored negated
    assert again.best == 0.5 and again.bad_epochs == 1


def plateau(mode_name, threshold):
    return LRSchedule(ScheduleConfig(name="plateau", patience=1, factor=0.5, threshold=threshold), 1.0, 100, 10,
                      monitor=Monitor.from_name(mode_name))


def test_plateau_on_accuracy_matches_torch_max_mode():
    values = [0.5, 0.6, 0.62, 0.61, 0.7, 0.7, 0.69, 0.71, 0.75, 0.74]
    ours = plateau("val_accuracy", threshold=0.05)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=1, threshold=0.05,
                                                     threshold_mode="abs")
    cuts = 0
    for v in values:
        cuts += ours.end_of_epoch(v)
        ref.step(v)
        assert ours.lr_at(0) == pytest.approx(opt.param_groups[0]["lr"])
    assert cuts >= 2  # the sequence exercises the cut path, not only improvements


def test_plateau_needs_a_monitor_and_reads_old_state():
    with pytest.raises(ValueError, match="needs a monitor"):
        LRSchedule(ScheduleConfig(name="plateau"), 1.0, 100, 10)
    s = plateau("val_loss", threshold=0.0)
    s.load_state_dict({"plateau_scale": 0.5, "plateau_best": -0.4, "plateau_bad_epochs": 0})  # before Monitor
    assert s.plateau_best == 0.4
    assert not s.end_of_epoch(0.3) and s.plateau_best == 0.3  # 0.3 < 0.4 is an improvement for a loss


def test_trainer_keeps_the_epoch_with_the_lowest_validation_loss(tmp_path):
    summary = train(toy_config("train.epochs=4", "train.early_stopping.monitor=val_loss", "optim.lr=0.05"),
                    tmp_path / "run", data=toy_data(), quiet=True)
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [e["val_loss"] for e in epochs if e["type"] == "epoch"]
    assert summary["best_val"] == min(losses) and summary["best_epoch"] == losses.index(min(losses)) + 1
