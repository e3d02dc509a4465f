"""cnnlab.sweep / cv / ensemble / ablate from Python: the command's outputs, as result objects with a table."""

from __future__ import annotations

import csv
import json

import pytest

import cnnlab
from cnnlab.errors import CnnlabError


def test_sweep_returns_the_trials_table(tmp_path, make_spec):
    result = cnnlab.sweep(str(make_spec(trials=2)), tmp_path / "sweep", quiet=True)
    with open(tmp_path / "sweep" / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert result.rows == rows and len(rows) == 2
    assert result == json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert "SweepResult(2 row(s))" in repr(result) and "<table>" in result._repr_html_()


def test_cv_and_ensemble_return_their_records(tmp_path, base_yaml):
    result = cnnlab.cv(str(base_yaml), tmp_path / "cv", folds=2, quiet=True)
    assert result == json.loads((tmp_path / "cv" / "summary.json").read_text())
    table = result.table()  # a DataFrame when pandas is installed, else the list of dicts
    folds = [r["fold"] for r in table] if isinstance(table, list) else list(table["fold"])
    assert folds == [0, 1]
    members = [r["run_dir"] for r in result.rows]
    combined = cnnlab.ensemble(members, "mean")
    assert [m["run_dir"] for m in combined.rows] == members
    assert 0.0 <= combined["test_accuracy"] <= 1.0
    with pytest.raises(CnnlabError, match="at least two runs"):
        cnnlab.ensemble(members[:1])


def test_ablate_returns_one_row_per_variant(tmp_path, base_yaml):
    result = cnnlab.ablate(str(base_yaml), tmp_path / "ab", techniques=["adam"], quiet=True)
    record = json.loads((tmp_path / "ab" / "summary.json").read_text())
    assert len(result.rows) == len(record["variants"]) >= 2
    assert result.plot == tmp_path / "ab" / "ablation.png"
