"""The `cnnlab` command end to end on a small real-format image folder, and every bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlab.cli import build_parser, main

FAST = ["data.image_size=16", "train.epochs=2", "data.batch_size=8", "model.filters=8", "train.plots=false",
        "train.early_stopping.patience=null"]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained_run(tmp_path, tiny_folder, cache_dir, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "train", "folder-convnet", f"data.root={tiny_folder}",
                              f"data.cache_dir={cache_dir}", *FAST, "--out", out, "--json", "--quiet")
    assert code == 0
    return out, json.loads(stdout)


def test_every_command_has_useful_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert len(capsys.readouterr().out) > 200, name


def test_train_eval_predict_on_an_image_folder(trained_run, tiny_folder, capsys):
    out, summary = trained_run
    assert summary["test_accuracy"] is not None and summary["dataset"] == "folder"
    assert summary["input_size"] == [3, 16, 16]
    code, stdout, _ = run_cli(capsys, "eval", out, "--json")
    report = json.loads(stdout)
    assert code == 0 and report["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert set(report["per_class_accuracy"]) == {"hstripes", "square", "vstripes"}
    assert (out / "confusion.png").is_file() and (out / "top_losses.png").is_file()
    images = sorted((tiny_folder / "square").iterdir())[:2]
    code, stdout, _ = run_cli(capsys, "predict", out, *images, "-k", "2", "--json")
    predictions = json.loads(stdout)["predictions"]
    assert code == 0 and len(predictions) == 2 and len(predictions[0]["top"]) == 2
    assert sum(p["probability"] for p in predictions[0]["top"]) <= 1.0 + 1e-6


def test_existing_out_is_refused_and_untouched(trained_run, tiny_folder, cache_dir, capsys):
    out, _ = trained_run
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, _, err = run_cli(capsys, "train", "folder-convnet", f"data.root={tiny_folder}", *FAST, "--out", out)
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert before == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


@pytest.mark.parametrize("argv, message", [
    (["train", "mnist-fast", "train.epohcs=2"], "did you mean 'train.epochs'"),
    (["train", "mnist-fast", "optim.lr=fast"], "optim.lr must be a number"),
    (["train", "mnist-fats"], "did you mean 'mnist-fast'"),
    (["train", "mnist-fast", "model.filtres=3"], "did you mean 'filters'"),
    (["eval", "/nonexistent/run"], "does not exist"),
    (["train", "--resume", "/nonexistent/run"], "not a cnnlab run directory"),
    (["data", "info", "nosuchset"], "unknown dataset 'nosuchset'"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and message in err and err.startswith("cnnlab: error:") and err.count("\n") == 1


def test_missing_dataset_lists_paths(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "nothing"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "also-nothing").mkdir()  # an explicit --data-dir must exist (a missing one is its own error)
    code, _, err = run_cli(capsys, "train", "mnist-fast", "--data-dir", tmp_path / "also-nothing",
                           "--out", tmp_path / "run")
    assert code == 2 and "also-nothing, " in err and "nothing, data (in mnist/, MNIST/raw/" in err and "images-idx3" in err
    assert not (tmp_path / "run").exists()


def test_eval_of_a_corrupt_checkpoint(trained_run, capsys):
    out, _ = trained_run
    (out / "final.pt").write_bytes(b"garbage")
    code, _, err = run_cli(capsys, "eval", out, "--weights", "final.pt")
    assert code == 2 and "corrupt or not a cnnlab checkpoint" in err


def test_predict_bad_images(trained_run, tmp_path, capsys):
    out, _ = trained_run
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG nope")
    code, _, err = run_cli(capsys, "predict", out, broken)
    assert code == 2 and "cannot read image" in err
    code, _, err = run_cli(capsys, "predict", out, tmp_path / "missing.png")
    assert code == 2 and "does not exist" in err


def test_diverging_run_exits_1_and_names_the_step(tiny_folder, cache_dir, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "folder-convnet", f"data.root={tiny_folder}",
                           f"data.cache_dir={cache_dir}", *FAST, "model.norm=none", "optim.name=sgd",
                           "optim.lr=1e12", "schedule.name=constant", "--out", tmp_path / "nan", "--quiet")
    summary = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert code == 1 and "non-finite loss at step" in err and summary["status"] == "nonfinite_loss"


def test_data_info_and_preview(tiny_folder, cache_dir, tmp_path, capsys):
    code, out, _ = run_cli(capsys, "data", "info", "folder", f"data.root={tiny_folder}",
                           f"data.cache_dir={cache_dir}", "--json")
    info = json.loads(out)
    assert code == 0 and info["train"] + info["test"] == 60 and info["image_size"] == [3, 16, 16]
    grid = tmp_path / "grid.png"
    code, _, _ = run_cli(capsys, "data", "preview", "folder-convnet", f"data.root={tiny_folder}",
                         f"data.cache_dir={cache_dir}", "--augment", "--count", "8", "--out", grid)
    assert code == 0 and grid.stat().st_size > 1000


def test_presets_and_models_list(capsys):
    code, out, _ = run_cli(capsys, "presets", "--json")
    assert code == 0 and {"mnist-fast", "mnist-best", "cifar10-resnet9", "folder-convnet"} <= set(json.loads(out))
    code, out, _ = run_cli(capsys, "models", "convnet", "--json")
    assert code == 0 and "pool_first" in json.loads(out)["convnet"]["options"]


def test_ctrl_c_saves_a_resumable_checkpoint(tiny_folder, cache_dir, tmp_path):
    """A real SIGINT to a real training process, then --resume finishes the run."""
    out = tmp_path / "interrupted"
    cmd = [sys.executable, "-m", "cnnlab.cli", "train", "folder-convnet", f"data.root={tiny_folder}",
           f"data.cache_dir={cache_dir}", *FAST, "train.epochs=200", "train.log_every=1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 0):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume with" in err and (out / "last.pt").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    resume = subprocess.run([sys.executable, "-m", "cnnlab.cli", "train", "--resume", str(out), "train.epochs=3",
                             "--quiet", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert resume.returncode == 0, resume.stderr
    assert json.loads(resume.stdout)["status"] == "completed"


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from cnnlab.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'numpy', 'matplotlib', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
