"""`cnnlab lr-find` and `schedule.max_lr=find`: the ramp, the smoothing, the stop, the suggestion, the RNG left alone."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cnnlab.train.lr_find import lr_ramp, prepare, range_test, smooth, suggest
from cnnlab.train.run import train
from tests.train.helpers import toy_config, toy_data


def test_ramp_smoothing_and_suggestion_against_numpy():
    ramp = lr_ramp(1e-6, 1.0, 61)
    np.testing.assert_allclose(ramp, np.geomspace(1e-6, 1.0, 61), rtol=1e-12)
    losses = np.random.default_rng(0).random(50)
    avg, ref = 0.0, []
    for i, v in enumerate(losses):  # the bias-corrected EMA written out
        avg = 0.9 * avg + 0.1 * v
        ref.append(avg / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(smooth(list(losses), 0.9), ref, rtol=1e-12)
    # a curve falling fastest around 1e-3 with its minimum at 1e-1
    lrs = list(np.geomspace(1e-6, 1.0, 61))
    curve = [2.0 - math.tanh(math.log10(lr) + 3) + (0.5 * (math.log10(lr) + 1) ** 2 if lr > 0.1 else 0) for lr in lrs]
    s = suggest(lrs, curve)
    assert s["min_loss_lr"] == pytest.approx(0.1, rel=0.3) and s["steepest_lr"] == pytest.approx(1e-3, rel=0.3)
    # the floor by hand: within 10 % of the fall (2.995 -> 1.036) above the minimum, i.e. up to 1.232:
    # tanh(x) = 0.768 on the left (x = 1.016, lr 0.0104), 0.5 (log10 lr + 1)^2 = 0.196 on the right (lr 0.42)
    low, high = s["floor_lrs"]
    step = 10 ** 0.1  # the grid: 10 rates a decade
    assert low / step < 0.0104 <= low and high <= 0.42 < high * step  # the grid's first and last rates inside
    assert s["suggested_lr"] == pytest.approx(math.sqrt(low * high) / 10)


def test_the_suggestion_does_not_hang_on_where_noise_puts_the_minimum_of_a_flat_floor():
    # a fall from 2.3 to a floor of 1.0 +- 0.01 spanning 1e-3..1e-1, then divergence: the lowest step
    # moves across the floor's two decades with the noise; min / 10 moves with it, the floor's middle does not
    lrs = list(np.geomspace(1e-6, 1.0, 61))
    base = [2.3 if lr < 1e-4 else 1.0 if 1e-3 <= lr <= 0.1 else (1.8 if lr < 1e-3 else 2.5) for lr in lrs]
    suggestions, minima = [], []
    for lowest in (1e-3, 1e-2, 1e-1):
        curve = [v - (0.01 if abs(math.log10(lr / lowest)) < 0.05 else 0) for v, lr in zip(base, lrs)]
        s = suggest(lrs, curve)
        suggestions.append(s["suggested_lr"])
        minima.append(s["min_loss_lr"])
    assert max(minima) / min(minima) > 50  # the minimum wandered over the floor
    assert suggestions == pytest.approx([1e-3] * 3, rel=0.01)  # sqrt(1e-3 * 1e-1) / 10


def test_range_test_stops_at_divergence_and_leaves_the_rng_alone():
    cfg = toy_config("optim.name=sgd", "optim.momentum=0.9", "train.device=cpu")
    cfg, task, data, device = prepare(cfg, toy_data())
    state = torch.get_rng_state()
    result = range_test(cfg, task, data, device, start_lr=1e-5, end_lr=1e4, steps=120)
    assert torch.equal(torch.get_rng_state(), state)
    assert result["stop"] in ("diverged", "non-finite loss") and result["steps"] < 120
    assert result["lrs"] == pytest.approx(lr_ramp(1e-5, 1e4, 120)[:len(result["lrs"])])
    low, high = result["floor_lrs"]
    assert 1e-5 < low <= result["min_loss_lr"] <= high < 1e4 and result["suggested_lr"] == pytest.approx(math.sqrt(low * high) / 10)
    assert min(result["smoothed"]) < result["smoothed"][0]  # it found rates that lower the loss


def test_max_lr_find_trains_at_the_suggestion_with_the_same_initial_weights(tmp_path):
    found = train(toy_config("schedule.max_lr=find", "train.epochs=2"), tmp_path / "find", data=toy_data(), quiet=True)
    lr = found["lr_find"]["suggested_lr"]
    assert found["lr_find"]["steps"] > 10 and lr > 0
    given = train(toy_config(f"schedule.peak_lr={lr!r}", "train.epochs=2"), tmp_path / "given", data=toy_data(),
                  quiet=True)
    a = torch.load(tmp_path / "find" / "final.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "given" / "final.pt", weights_only=True)["model"]
    for k in a:  # the range test drew nothing from the run's RNG: the same run as with the rate written in
        torch.testing.assert_close(a[k], b[k], msg=k)
    assert found["test_accuracy"] == given["test_accuracy"]


def test_lr_find_cli_writes_plot_and_json_and_refuses_a_config_that_diverges_at_once(tmp_path, capsys):
    from cnnlab.cli import main

    out = tmp_path / "lrf"
    argv = ["lr-find", "mnist-fast", "data.limit_train=1000", "train.threads=1", "data.batch_size=32", "--steps", "60",
            "--start-lr", "1e-5", "--end-lr", "100", "--out", str(out)]
    assert main(argv + ["--json"]) == 0
    stdout = capsys.readouterr().out
    record = json.loads(stdout)
    assert record == json.loads((out / "lr_find.json").read_text())
    assert (out / "lr_find.png").stat().st_size > 1000 and record["steps"] <= 60
    assert record["suggested_lr"] == pytest.approx(math.sqrt(record["floor_lrs"][0] * record["floor_lrs"][1]) / 10)
    code = main(argv + ["--json"])  # the output policy: an existing directory is not replaced silently
    assert code == 2 and "exists" in capsys.readouterr().err

    bad = tmp_path / "bad"
    code = main(["lr-find", "mnist-fast", "data.limit_train=500", "optim.name=sgd", "--start-lr", "1e4",
                 "--end-lr", "1e6", "--steps", "30", "--out", str(bad)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("cnnlab: error: the loss diverged at once")
    assert not bad.exists()
    for args, message in ((["--steps", "5"], "--steps 5 is out of range"), (["--start-lr", "0"], "--start-lr 0"),
                          (["--start-lr", "1", "--end-lr", "0.1"], "0 < --start-lr < --end-lr")):
        code = main(["lr-find", "mnist-fast", *args, "--out", str(bad)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and not bad.exists(), err


def test_one_default_step_count_for_the_command_and_schedule_max_lr_find():
    """90 steps (5 % of cifar10-cpu's 1,950 at most): the command, run_lr_find and range_test agree."""
    import argparse
    import inspect

    from cnnlab.commands import lr_find as command
    from cnnlab.train.lr_find import DEFAULT_STEPS, run_lr_find

    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    command.register(subparsers)
    args = parser.parse_args(["lr-find", "mnist-fast"])
    assert args.steps is None  # left to run_lr_find's default
    help_text = " ".join(subparsers.choices["lr-find"].format_help().split())
    assert f"(default {DEFAULT_STEPS}:" in help_text
    for fn in (range_test, run_lr_find):
        assert inspect.signature(fn).parameters["steps"].default == DEFAULT_STEPS == 90
    assert DEFAULT_STEPS / (10 * 195) <= 0.05  # cifar10-cpu: 10 epochs of 195 batches of 256


def test_a_resumed_max_lr_find_run_trains_at_the_rate_it_found_not_a_second_tests(tmp_path, monkeypatch):
    from cnnlab.train import lr_find
    from tests.train.test_trainer import StopAt

    data, cfg = toy_data(), toy_config("schedule.max_lr=find", "train.epochs=2")
    full = train(cfg, tmp_path / "full", data=data, quiet=True)
    cut = train(toy_config("schedule.max_lr=find", "train.epochs=2"), tmp_path / "cut", data=data, quiet=True,
                callbacks=[StopAt(5)])
    assert cut["status"] == "interrupted"
    real = lr_find.range_test

    def elsewhere(*args, **kwargs):  # a second test that lands on another rate (a GPU, another thread count)
        result = real(*args, **kwargs)
        return {**result, "suggested_lr": result["suggested_lr"] * 3}

    monkeypatch.setattr(lr_find, "range_test", elsewhere)
    resumed = train(toy_config("schedule.max_lr=find", "train.epochs=2"), tmp_path / "cut", data=data, quiet=True,
                    resume=True)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["model"]
    for k in a:  # the resumed run is the uninterrupted one
        assert torch.equal(a[k], b[k]), k
    recorded = json.loads((tmp_path / "cut" / "lr_find.json").read_text())
    assert recorded == cut["lr_find"] == resumed["lr_find"]
    assert recorded["suggested_lr"] == full["lr_find"]["suggested_lr"]
    assert resumed["status"] == "completed" and resumed["phase_seconds"]["lr_find"] == 0.0  # not tested again


def test_a_resumed_run_refuses_a_damaged_range_test_record(tmp_path):
    from tests.train.test_trainer import StopAt

    cut = train(toy_config("schedule.max_lr=find", "train.epochs=2"), tmp_path / "cut", data=toy_data(), quiet=True,
                callbacks=[StopAt(5)])
    assert cut["status"] == "interrupted"
    (tmp_path / "cut" / "lr_find.json").write_text('{"suggested_lr": NaN}')
    from cnnlab.errors import CnnlabError

    with pytest.raises(CnnlabError, match="lr_find.json is not the range test record"):
        train(toy_config("schedule.max_lr=find", "train.epochs=2"), tmp_path / "cut", data=toy_data(), quiet=True,
              resume=True)
