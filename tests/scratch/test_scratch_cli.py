"""``cnnlab scratch train mnist`` on the real MNIST (skipped when the files are not found)."""

import json
from pathlib import Path

import pytest

from cnnlab.cli import main


def _mnist_dir():
    from cnnlab.data.locate import find_dataset_dir
    from cnnlab.errors import CnnlabError

    try:
        return find_dataset_dir("mnist")
    except CnnlabError as exc:
        pytest.skip(f"real MNIST not found (set CNNLAB_DATA): {exc}")


def test_quick_run_writes_summary_and_one_json_object(tmp_path, capsys):
    data = _mnist_dir()
    out = tmp_path / "run"
    code = main(["scratch", "train", "mnist", "--limit", "256", "--epochs", "1", "--batch-size", "64",
                 "--channels", "4,8", "--hidden", "16", "--data-dir", str(data), "--out", str(out), "--json"])
    assert code == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)  # exactly one JSON object on stdout
    assert "epoch 1/1" in captured.err  # progress goes to stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary == printed
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert summary["train_seconds"] > 0 and summary["images_per_second"] > 0
    assert summary["algorithm"] == "im2col" and summary["epochs"] == 1 and summary["train_examples"] == 256
    assert (out / "model.npz").is_file()


def test_existing_output_is_refused_unless_overwrite(tmp_path, capsys):
    data = _mnist_dir()
    out = tmp_path / "run"
    out.mkdir()
    args = ["scratch", "train", "mnist", "--limit", "64", "--channels", "2,2", "--hidden", "4", "--epochs", "1",
            "--data-dir", str(data), "--out", str(out)]
    assert main(args) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite", "--algorithm", "winograd"]) == 0
    assert json.loads((out / "summary.json").read_text())["algorithm"] == "winograd"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--algorithm", "im2cl"], "did you mean 'im2col'"),
        (["--channels", "32"], "--channels must be two positive integers"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--lr", "-1"], "--lr must be > 0"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, extra, message):
    code = main(["scratch", "train", "mnist", "--out", str(tmp_path / "x")] + extra)
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_unknown_dataset_and_missing_data_are_errors(tmp_path, capsys, monkeypatch):
    assert main(["scratch", "train", "cifar10", "--out", str(tmp_path / "a")]) == 2
    assert "supports mnist" in capsys.readouterr().err
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "none").mkdir()  # an explicit --data-dir must exist (a missing one is its own error)
    assert main(["scratch", "train", "mnist", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "b")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow  # full MNIST training (minutes): `make test-slow`
def test_full_training_reaches_98_percent(tmp_path):
    data = _mnist_dir()
    out = tmp_path / "full"
    assert main(["scratch", "train", "mnist", "--data-dir", str(data), "--out", str(out)]) == 0
    assert json.loads(Path(out / "summary.json").read_text())["test_accuracy"] >= 0.98
