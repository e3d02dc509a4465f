"""`cnnlab bench sweep` on a tiny spec: three sweeps, the accounting checked against their run directories."""

from __future__ import annotations

import json
from pathlib import Path

from tests.tune.conftest import cli


def test_bench_sweep_compares_pruned_and_unpruned(tmp_path, make_spec, capsys):
    # --no-workers: the 2-worker path is tested in test_sweep.py; spawning workers again would only add time
    spec = make_spec(trials=3, pruner={"name": "median", "startup_trials": 1}, overrides={"train.epochs": 3})
    code, stdout, err = cli(capsys, "bench", "sweep", "--spec", spec, "--work-dir", tmp_path / "work",
                            "--out-dir", tmp_path / "results", "--no-workers", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert Path(result["json_path"]).parent == tmp_path / "results"
    assert set(result["runs"]) == {"unpruned", "pruned"} and "workers" not in result
    for run in result["runs"].values():
        # trial-epochs recounted from the trials' own run directories
        epochs = sum(json.loads(p.read_text())["epochs"] for p in Path(run["sweep_dir"]).glob("trials/*/summary.json"))
        assert run["trial_epochs"] == epochs
    u, p = result["runs"]["unpruned"], result["runs"]["pruned"]
    assert u["trial_epochs"] == 9 and u["trials"]["pruned"] == 0
    assert result["pruning"]["epoch_saving"] == round(1 - p["trial_epochs"] / 9, 4)
    assert result["pruning"]["met"] == (result["pruning"]["best_gap_points"] <= 0.3
                                        and result["pruning"]["epoch_saving"] >= 0.4)
