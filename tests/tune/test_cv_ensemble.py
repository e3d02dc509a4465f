"""`cnnlab cv` and `cnnlab ensemble`: folds, combination rules checked by hand, stacking held out, bagging."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import torch

from cnnlab.tune.cv import stratified_folds
from cnnlab.tune.ensemble import bootstrap_indices, combine, fit_logistic, stack_predictions
from tests.tune.conftest import cli


def test_stratified_folds_partition_and_keep_class_shares():
    labels = np.array([0] * 23 + [1] * 10 + [2] * 4)
    folds = stratified_folds(labels, 5, seed=3)
    together = np.concatenate(folds)
    assert sorted(together.tolist()) == list(range(len(labels)))  # disjoint and complete
    for cls, count in ((0, 23), (1, 10), (2, 4)):
        per_fold = [int((labels[f] == cls).sum()) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == count
    assert [f.tolist() for f in folds] == [f.tolist() for f in stratified_folds(labels, 5, seed=3)]
    assert [f.tolist() for f in folds] != [f.tolist() for f in stratified_folds(labels, 5, seed=4)]


def test_cv_trains_each_fold_on_the_others(tmp_path, base_yaml, capsys):
    out = tmp_path / "cv"
    code, stdout, err = cli(capsys, "cv", base_yaml, "--folds", 3, "--out", out, "--json", "--quiet")
    assert code == 0, err
    record = json.loads(stdout)
    accs = []
    for r in record["per_fold"]:
        summary = json.loads(open(r["run_dir"] + "/summary.json").read())
        assert summary["test_accuracy"] == r["accuracy"] and summary["test_split"].startswith("held-out fold")
        # 48 training images (16 per class in the fixture's 75% train part): 2/3 train (then 25% val), 1/3 held out
        assert summary["split_sizes"]["test"] == r["held_out_images"] == 12
        assert r["train_images"] == 24
        accs.append(r["accuracy"])
    assert record["mean_accuracy"] == pytest.approx(statistics.fmean(accs))
    assert record["std_accuracy"] == pytest.approx(statistics.stdev(accs))
    code, _, err = cli(capsys, "cv", base_yaml, "--folds", 1, "--out", tmp_path / "x")
    assert code == 2 and "--folds must be >= 2" in err and not (tmp_path / "x").exists()
    code, _, err = cli(capsys, "cv", base_yaml, "data.val=test", "--out", tmp_path / "x")
    assert code == 2 and "data.val=test would choose the model" in err


def test_mean_and_vote_by_hand():
    # 3 members, 4 images, 3 classes; written so that mean and vote disagree on image 1 and vote ties on image 3
    p = torch.tensor([
        [[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]],
        [[0.6, 0.3, 0.1], [0.1, 0.45, 0.45001], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]],
        [[0.2, 0.7, 0.1], [0.0, 0.9, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]],
    ])
    assert combine(p, "mean").tolist() == [0, 1, 2, 1]
    # votes: image0 0,0,1 -> 0; image1 1,2,1 -> 1; image2 2,1,2 -> 2; image3 0,1,2 tie -> highest mean (class 1)
    assert combine(p, "vote").tolist() == [0, 1, 2, 1]
    p2 = p.clone()
    p2[0, 1] = torch.tensor([0.05, 0.9, 0.05])  # one confident vote for 1 ...
    p2[2, 1] = torch.tensor([0.1, 0.4, 0.5])  # ... two weak votes for 2: vote says 2, the mean (0.583 vs 0.333) says 1
    assert combine(p2, "vote")[1].item() == 2 and combine(p2, "mean")[1].item() == 1


def test_logistic_regression_learns_and_stacking_is_held_out():
    gen = torch.Generator().manual_seed(0)
    n, c = 300, 3
    labels = torch.arange(n) % c
    good = torch.nn.functional.one_hot(labels, c).float() * 0.8 + 0.2 / c  # a member that is always right
    noise = torch.softmax(torch.randn(2, n, c, generator=gen), dim=2)  # two members that know nothing
    probs = torch.cat([noise[:1], good[None], noise[1:]])  # (3, N, C)
    preds = stack_predictions(probs, labels)
    assert (preds == labels).float().mean() == 1.0  # the meta-model finds the reliable member
    w, b = fit_logistic(torch.log(probs.permute(1, 0, 2).reshape(n, -1)), labels, c)
    assert w.shape == (9, 3) and b.shape == (3,)
    # held out: scrambling the labels of one fold cannot change that fold's predictions
    folds = stratified_folds(labels.numpy(), 5, 0)
    scrambled = labels.clone()
    scrambled[torch.from_numpy(folds[0])] = (labels[torch.from_numpy(folds[0])] + 1) % c
    noisy = torch.softmax(torch.randn(3, n, c, generator=gen), dim=2) * 0.5 + 0.5 * probs
    a = stack_predictions(noisy, labels, fold_indices=folds)
    b2 = stack_predictions(noisy, scrambled, fold_indices=folds)
    held = torch.from_numpy(folds[0])
    assert torch.equal(a[held], b2[held])  # other folds may change; the scrambled fold's own predictions must not
    assert not torch.equal(a, b2)  # ... and they do change: the meta-models for the other folds saw the scramble


def test_ensemble_of_runs_and_bagging(tmp_path, base_yaml, capsys):
    runs = []
    for seed in range(3):
        out = tmp_path / f"run{seed}"
        code, _, err = cli(capsys, "train", base_yaml, f"train.seed={seed}", "train.epochs=3", "--out", out, "--quiet")
        assert code == 0, err
        runs.append(out)
    results = {}
    for method in ("mean", "vote", "stack"):
        code, stdout, err = cli(capsys, "ensemble", *runs, "--method", method, "--json")
        assert code == 0, err
        results[method] = json.loads(stdout)
    for r in results["mean"]["members"]:  # each member's accuracy agrees with what its training measured
        assert r["test_accuracy"] == pytest.approx(json.loads(open(f"{r['run_dir']}/summary.json").read())["test_accuracy"])
    assert results["mean"]["test_images"] == 12 and 0 <= results["stack"]["test_accuracy"] <= 1
    code, stdout, _ = cli(capsys, "ensemble", *runs)
    assert code == 0 and stdout.count("member  ") == 3 and "ensemble (mean, 3 members)" in stdout

    code, _, err = cli(capsys, "ensemble", runs[0])
    assert code == 2 and "at least 2 runs" in err
    code, _, err = cli(capsys, "ensemble", *runs, "--method", "avg")
    assert code == 2 and "unknown --method 'avg'" in err

    out = tmp_path / "bag"
    code, stdout, err = cli(capsys, "ensemble", "--bagging", 2, base_yaml, "--out", out, "--json", "--quiet")
    assert code == 0, err
    bag = json.loads(stdout)
    assert len(bag["members"]) == 2 and bag["bagging"] == 2
    sizes = [json.loads((out / "members" / f"member{i}" / "summary.json").read_text())["split_sizes"] for i in range(2)]
    assert sizes[0]["train"] + sizes[0]["val"] == 36  # a bootstrap sample is as large as the training set


def test_bootstrap_draws_with_replacement():
    idx = bootstrap_indices(1000, seed=1)
    assert len(idx) == 1000 and idx.min() >= 0 and idx.max() < 1000
    assert 550 < len(np.unique(idx)) < 720  # about 1 - 1/e = 63.2% distinct
    assert not np.array_equal(idx, bootstrap_indices(1000, seed=2))
