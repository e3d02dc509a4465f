"""`cnnlab bench speedrun` on a tiny folder: N runs, mean ± std checked against the per-run values,
the device named, JSON written. Timings are recorded, never asserted."""

import json
import statistics

import pytest

from cnnlab.cli import main


def test_bench_speedrun_reports_mean_and_std(tiny_folder, cache_dir, tmp_path, capsys):
    out_dir = tmp_path / "results"
    common = [f"data.root={tiny_folder}", f"data.cache_dir={cache_dir}", "data.image_size=16", "data.batch_size=8",
              "model.filters=4", "train.epochs=1", "train.early_stopping.patience=null", "data.val=none",
              "train.threads=1"]
    code = main(["bench", "speedrun", "folder-convnet", "--runs", "3", "--out-dir", str(out_dir), "--json", *common])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["runs"] == 3 and [r["seed"] for r in result["per_run"]] == [0, 1, 2]
    accs = [r["test_accuracy"] for r in result["per_run"]]
    secs = [r["train_seconds"] for r in result["per_run"]]
    assert result["test_accuracy_mean"] == pytest.approx(statistics.fmean(accs))
    assert result["test_accuracy_std"] == pytest.approx(statistics.stdev(accs))
    assert result["train_seconds_mean"] == pytest.approx(statistics.fmean(secs))
    assert result["device"] == "cpu" and result["device_name"].endswith("(1 thread)")
    assert result["compile_seconds_mean"] is None  # the preset does not compile
    files = list(out_dir.glob("speedrun-folder-convnet-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["preset"] == "folder-convnet"


def test_bench_speedrun_bad_runs_is_one_line(capsys, tmp_path):
    assert main(["bench", "speedrun", "mnist-fast", "--runs", "0", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--runs" in err[0]
