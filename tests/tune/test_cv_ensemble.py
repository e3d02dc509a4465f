"""`cnnlab cv` and `cnnlab ensemble`: folds, combination rules checked by hand, stacking held out, bagging."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import torch

from cnnlab.tune.cv import stratified_folds
from cnnlab.tune.ensemble import bootstrap_indices, combine, fit_logistic, stack_predictions
from cnnlab.cli import main
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


def test_logistic_regression_learns_the_reliable_member():
    gen = torch.Generator().manual_seed(0)
    n, c = 300, 3
    labels = torch.arange(n) % c
    good = torch.nn.functional.one_hot(labels, c).float() * 0.8 + 0.2 / c  # a member that is always right
    noise = torch.softmax(torch.randn(2, n, c, generator=gen), dim=2)  # two members that know nothing
    probs = torch.cat([noise[:1], good[None], noise[1:]])  # (3, N, C)
    fit, test = slice(0, 200), slice(200, n)
    preds = stack_predictions(probs[:, fit], labels[fit], probs[:, test])
    assert (preds == labels[test]).float().mean() == 1.0  # the meta-model finds the reliable member
    w, b = fit_logistic(torch.log(probs.permute(1, 0, 2).reshape(n, -1)), labels, c)
    assert w.shape == (9, 3) and b.shape == (3,)
    # a meta-model fitted on swapped labels (class k -> k+1) predicts the swap: the fit labels are what it learns
    swapped = stack_predictions(probs[:, fit], (labels[fit] + 1) % c, probs[:, test])
    assert torch.equal(swapped, (labels[test] + 1) % c)


def test_ensemble_of_runs_and_bagging(tmp_path, base_yaml, capsys):
    runs = []
    for seed in range(3):
        out = tmp_path / f"run{seed}"
        code, _, err = cli(capsys, "train", base_yaml, f"train.seed={seed}", "train.epochs=3", "--out", out, "--quiet")
        assert code == 0, err
        runs.append(out)
    results = {}
    for method in ("mean", "vote"):
        code, stdout, err = cli(capsys, "ensemble", *runs, "--method", method, "--json")
        assert code == 0, err
        results[method] = json.loads(stdout)
    for r in results["mean"]["members"]:  # each member's accuracy agrees with what its training measured
        assert r["test_accuracy"] == pytest.approx(json.loads(open(f"{r['run_dir']}/summary.json").read())["test_accuracy"])
    assert results["mean"]["test_images"] == 12
    code, stdout, _ = cli(capsys, "ensemble", *runs)
    assert code == 0 and stdout.count("member  ") == 3 and "ensemble (mean, 3 members)" in stdout

    # stacking needs held-out images every member skipped: three seeds' validation splits share too few
    code, _, err = cli(capsys, "ensemble", *runs, "--method", "stack")
    assert code == 2 and "share only" in err and "train.seed 0, 1, 2" in err and len(err.strip().splitlines()) == 1
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
    code, _, err = cli(capsys, "ensemble", *(out / "members" / f"member{i}" for i in range(2)), "--method", "stack")
    assert code == 2 and "bootstrap0, a sample its config does not record" in err

    out = tmp_path / "bag-stack"  # stacking bagged members: a split held out of every bootstrap sample
    code, stdout, err = cli(capsys, "ensemble", "--bagging", 2, base_yaml, "--method", "stack", "--out", out,
                            "--json", "--quiet")
    assert code == 0, err
    bag = json.loads(stdout)
    assert bag["stack_images"] == 9  # 25 % of the 36 training images, 3 per class
    sizes = json.loads((out / "members" / "member0" / "summary.json").read_text())["split_sizes"]
    assert sizes["train"] + sizes["val"] == 27  # the bootstrap is drawn from the other 27


def test_bootstrap_draws_with_replacement():
    idx = bootstrap_indices(1000, seed=1)
    assert len(idx) == 1000 and idx.min() >= 0 and idx.max() < 1000
    assert 550 < len(np.unique(idx)) < 720  # about 1 - 1/e = 63.2% distinct
    assert not np.array_equal(idx, bootstrap_indices(1000, seed=2))


def test_bagging_member_count_is_bounded(tmp_path, base_yaml, capsys):
    for k in (1, 100_000_000):  # 10^8 members used to start training them, one after another
        code, _, err = cli(capsys, "ensemble", "--bagging", k, base_yaml, "--out", tmp_path / "bag")
        assert code == 2 and f"--bagging {k} is out of range" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "bag").exists()


@pytest.fixture(scope="module")
def stack_members(tmp_path_factory, tune_folder):
    """Three members of one train.seed (so one validation split) that differ in width and learning rate."""
    import yaml

    from tests.tune.conftest import BASE

    root = tmp_path_factory.mktemp("stack")
    base = {**BASE, "data": {**BASE["data"], "root": str(tune_folder), "cache_dir": str(root / "cache")}}
    (root / "base.yaml").write_text(yaml.safe_dump(base))
    runs = []
    for i, (dense, lr) in enumerate(((8, 0.01), (16, 0.003), (32, 0.02))):
        out = root / f"m{i}"
        code = main(["train", str(root / "base.yaml"), f"model.dense={dense}", f"optim.lr={lr}", "train.epochs=3",
                     "--out", str(out), "--quiet"])
        assert code == 0
        runs.append(out)
    return root, runs


def test_stacking_never_reads_a_test_label(stack_members, monkeypatch):
    """The meta-model is fitted on validation predictions: permuting the test labels before the fit (and restoring
    them before scoring) leaves the score as it was. The old cross-fit over test folds failed this."""
    from cnnlab.data.datasets import load_dataset
    from cnnlab.runs import load_run_config
    from cnnlab.tune import ensemble

    _, runs = stack_members
    data = load_dataset(load_run_config(runs[0]).data)
    honest = ensemble.ensemble_runs(runs, "stack", data=data)
    assert honest["stack_images"] == 9 and "no member trained on" in honest["note"]
    true_labels = data.test_y.clone()
    real = ensemble.stack_predictions

    def fit_then_restore(*args):
        preds = real(*args)
        data.test_y = true_labels  # restored before scoring
        return preds

    for seed in range(3):
        data.test_y = true_labels[torch.randperm(len(true_labels), generator=torch.Generator().manual_seed(seed))]
        assert not torch.equal(data.test_y, true_labels)
        monkeypatch.setattr(ensemble, "stack_predictions", fit_then_restore)
        permuted = ensemble.ensemble_runs(runs, "stack", data=data)
        assert permuted["test_accuracy"] == honest["test_accuracy"]
    # and the fit does use the validation labels: scrambling those changes what the meta-model learns
    monkeypatch.setattr(ensemble, "stack_predictions", real)
    fit_x, fit_y = ensemble._stack_set(ensemble.load_members(runs, data=data)[0], data)
    probs = ensemble.predict_probabilities(ensemble.load_members(runs, data=data)[0], fit_x)
    assert not torch.equal(ensemble.stack_predictions(probs, fit_y, probs),
                           ensemble.stack_predictions(probs, (fit_y + 1) % 3, probs))


def test_stacking_refuses_members_without_validation(stack_members, tmp_path, capsys):
    root, runs = stack_members
    out = tmp_path / "noval"
    code, _, err = cli(capsys, "train", root / "base.yaml", "data.val=none", "train.epochs=1", "--out", out, "--quiet")
    assert code == 0, err
    code, stdout, err = cli(capsys, "ensemble", runs[0], out, "--method", "stack")
    assert code == 2 and not stdout and len(err.strip().splitlines()) == 1
    assert "has no validation split (data.val=none); retrain the members with data.val=split" in err
    code, stdout, err = cli(capsys, "ensemble", *runs, "--method", "stack")
    assert code == 0 and "ensemble (stack, 3 members)" in stdout and "9 held-out training images" in err
