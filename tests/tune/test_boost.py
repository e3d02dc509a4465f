"""`cnnlab ensemble --boost K CONFIG`: SAMME checked against a NumPy re-derivation from the saved members."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cnnlab.tune.boost import samme_combine, samme_step, weighted_resample
from tests.tune.conftest import cli


def test_samme_step_by_hand():
    w = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    wrong = torch.tensor([True, False, False, True])
    err, alpha, new = samme_step(w, wrong, classes=4)
    assert err == pytest.approx(0.5)  # 0.1 + 0.4
    assert alpha == pytest.approx(math.log(1.0) + math.log(3))  # log((1-.5)/.5) + log(C-1)
    expected = np.array([0.1 * 3, 0.2, 0.3, 0.4 * 3])
    assert new.numpy() == pytest.approx(expected / expected.sum())
    # two classes: SAMME is AdaBoost.M1, alpha = log((1-err)/err); at err = 1/2 (chance) the member gets weight 0
    err, alpha, _ = samme_step(torch.full((4,), 0.25, dtype=torch.float64), torch.tensor([1, 1, 0, 0]).bool(), 2)
    assert (err, alpha) == (0.5, 0.0)


def test_samme_combine_weights_votes_and_breaks_ties_by_weighted_probability():
    # 3 members, 2 images, 3 classes
    p = torch.tensor([[[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]],
                      [[0.1, 0.8, 0.1], [0.2, 0.7, 0.1]],
                      [[0.1, 0.7, 0.2], [0.3, 0.3, 0.4]]])
    # image 0: class 0 has weight 2.0, class 1 has 0.5 + 0.5 = 1.0 -> 0; an unweighted vote would say 1
    assert samme_combine(p, [2.0, 0.5, 0.5]).tolist()[0] == 0
    assert samme_combine(p, [1.0, 1.0, 1.0]).tolist()[0] == 1
    # image 1: votes 0, 1, 2 with alphas 1, 1, 1 tie; weighted mean probability: 0.333, 0.467, 0.2 -> class 1
    assert samme_combine(p, [1.0, 1.0, 1.0]).tolist()[1] == 1


def test_weighted_resample_follows_the_weights():
    w = torch.tensor([0.7, 0.2, 0.1, 0.0], dtype=torch.float64)
    counts = np.bincount(weighted_resample(w.repeat(2500) / 2500, seed=0) % 4, minlength=4) / 10_000
    assert counts == pytest.approx([0.7, 0.2, 0.1, 0.0], abs=0.02)
    assert np.array_equal(weighted_resample(w, 3), weighted_resample(w, 3))


def _numpy_samme(member_preds_train, y, member_preds_test, classes):
    """The reference: SAMME written out in NumPy from each saved member's predictions."""
    w = np.full(len(y), 1.0 / len(y))
    alphas = []
    for pred in member_preds_train:
        miss = (pred != y).astype(float)
        err = (w * miss).sum() / w.sum()
        alpha = np.log((1 - err) / max(err, 1e-10)) + np.log(classes - 1)
        alphas.append(alpha)
        w = w * np.exp(alpha * miss)
        w /= w.sum()
    score = np.zeros((len(member_preds_test[0]), classes))
    for a, pred in zip(alphas, member_preds_test):
        score[np.arange(len(pred)), pred] += a
    return alphas, score


def test_boosting_trains_members_in_sequence_on_reweighted_samples(tmp_path, base_yaml, capsys):
    from cnnlab.data.datasets import load_dataset
    from cnnlab.runs import load_run, load_run_config
    from cnnlab.tune.ensemble import predict_probabilities

    out = tmp_path / "boost"
    code, stdout, err = cli(capsys, "ensemble", "--boost", 3, base_yaml, "train.epochs=1", "optim.lr=0.001", "--out", out, "--json",
                            "--quiet")
    assert code == 0, err
    record = json.loads(stdout)
    assert record["method"] == "boost" and record == json.loads((out / "ensemble.json").read_text())
    accepted = [m["run_dir"] for m in record["members"]]
    assert len(accepted) == 3, record["rounds"]  # one epoch: no member fits all 36 images, none is at chance
    data = load_dataset(load_run_config(accepted[0]).data)
    runs = [load_run(d) for d in accepted]
    train_preds = predict_probabilities(runs, data.train_x).argmax(2).numpy()
    test_preds = predict_probabilities(runs, data.test_x).argmax(2).numpy()
    alphas, score = _numpy_samme(train_preds, data.train_y.numpy(), test_preds, data.num_classes)
    assert [m["alpha"] for m in record["members"]] == pytest.approx(alphas)
    best = score.max(1, keepdims=True)
    # every ensemble prediction is one of the classes with the most alpha weight (ties broken by probability)
    ours = samme_combine(predict_probabilities(runs, data.test_x), [m["alpha"] for m in record["members"]]).numpy()
    assert np.all(score[np.arange(len(ours)), ours] >= best[:, 0] - 1e-9)
    assert record["test_accuracy"] == pytest.approx(float((ours == data.test_y.numpy()).mean()))
    # round 2 trained on a weighted resample: not the uniform bootstrap of seed+1
    sizes = json.loads((out / "members" / "member0" / "summary.json").read_text())["split_sizes"]
    assert sizes["train"] + sizes["val"] == 36


def test_boosting_bad_input(tmp_path, base_yaml, capsys, monkeypatch):
    for k in (1, 0, 101):
        code, stdout, err = cli(capsys, "ensemble", "--boost", k, base_yaml, "--out", tmp_path / "b")
        assert code == 2 and f"--boost {k} is out of range" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "b").exists() and not stdout
    code, _, err = cli(capsys, "ensemble", "--method", "boost", base_yaml)
    assert code == 2 and "--method boost trains its own members: `cnnlab ensemble --boost K CONFIG" in err
    code, _, err = cli(capsys, "ensemble", "--boost", 2, base_yaml, "--method", "vote")
    assert code == 2 and "drop --method" in err
    # a first member no better than chance ends it: one line, nothing left behind
    from cnnlab.tune import boost

    real = boost.samme_step
    monkeypatch.setattr(boost, "samme_step", lambda w, wrong, c: real(w, torch.ones_like(wrong), c))  # all wrong
    code, stdout, err = cli(capsys, "ensemble", "--boost", 2, base_yaml, "train.epochs=1", "--out", tmp_path / "b",
                            "--quiet")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("cnnlab: error: round 1: weighted error")
    assert "1.0000 >= 1 - 1/3 = 0.6667" in err and not (tmp_path / "b").exists()


def test_boosting_stops_with_a_notice_when_a_later_member_is_at_chance(tmp_path, base_yaml, capsys, monkeypatch):
    from cnnlab.tune import boost

    real, calls = boost.samme_step, []

    def second_at_chance(weights, wrong, classes):
        calls.append(1)
        if len(calls) == 1:  # round 1 missed a few images: a usable member
            wrong = torch.zeros_like(wrong)
            wrong[:5] = True
        if len(calls) == 2:  # pretend round 2 missed 70 % of the weight (>= 1 - 1/3)
            wrong = torch.zeros_like(wrong)
            wrong[: int(0.7 * len(wrong)) + 1] = True
            weights = torch.full_like(weights, 1 / len(weights))
        return real(weights, wrong, classes)

    monkeypatch.setattr(boost, "samme_step", second_at_chance)
    out = tmp_path / "b"
    code, stdout, err = cli(capsys, "ensemble", "--boost", 4, base_yaml, "train.epochs=3", "--out", out, "--quiet")
    assert code == 0, err
    assert "notice: round 2: weighted error" in err and "SAMME stops with 1 members" in err
    assert "ensemble (boost, 1 members)" in stdout and len(calls) == 2
    record = json.loads((out / "ensemble.json").read_text())
    assert len(record["rounds"]) == 2 and record["rounds"][1]["alpha"] == 0.0
