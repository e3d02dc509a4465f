"""Run directories through the CLI: nothing deleted that cnnlab did not make, locks, resume, failure paths."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnlab.rundir import MARKER, lock_run_dir, open_run_dir
from cnnlab.checkpoint import load_checkpoint, save_checkpoint
from tests.cli.test_cli import FAST, run_cli


def train_args(folder, cache, out, *extra):
    return ["train", "folder-convnet", f"data.root={folder}", f"data.cache_dir={cache}", *FAST, *extra,
            "--out", out, "--quiet"]


@pytest.fixture
def run_dir(tmp_path, tiny_folder, cache_dir, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(tiny_folder, cache_dir, out))
    assert code == 0, err
    return out


def one_line_error(code, err, *needles):
    assert code == 2 and err.startswith("cnnlab: error:") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ --overwrite deletes only marked runs


def test_overwrite_refuses_a_folder_that_merely_holds_config_yaml(tmp_path, tiny_folder, cache_dir, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my: own\n")
    (mine / "thesis.tex").write_text("years of work")
    before = snapshot(mine)
    code, _, err = run_cli(capsys, *train_args(tiny_folder, cache_dir, mine, "--overwrite"))
    one_line_error(code, err, "not a cnnlab run directory", MARKER)
    assert snapshot(mine) == before


def test_overwrite_replaces_a_marked_run_only_once_the_data_has_loaded(run_dir, tiny_folder, cache_dir, tmp_path,
                                                                       capsys):
    assert (run_dir / MARKER).is_file()
    before = snapshot(run_dir)
    code, _, err = run_cli(capsys, *train_args(tmp_path / "no-such-folder", cache_dir, run_dir, "--overwrite"))
    assert code == 2 and snapshot(run_dir) == before  # the data failed: the old run is untouched
    first_id = json.loads((run_dir / MARKER).read_text())["run_id"]
    (run_dir / "eval.json").write_text("{}")
    code, _, err = run_cli(capsys, *train_args(tiny_folder, cache_dir, run_dir, "--overwrite"))
    assert code == 0, err
    assert json.loads((run_dir / MARKER).read_text())["run_id"] != first_id and not (run_dir / "eval.json").exists()


def test_scratch_overwrite_never_deletes_what_it_did_not_make(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "no-data"))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep too")
    for target in (folder, a_file):
        code, _, err = run_cli(capsys, "scratch", "train", "mnist", "--out", target, "--overwrite",
                               "--data-dir", tmp_path / "no-data")
        one_line_error(code, err, "refusing to overwrite")
    assert (folder / "notes.txt").read_text() == "keep" and a_file.read_text() == "keep too"
    # Missing data: the output folder is not even created.
    code, _, _ = run_cli(capsys, "scratch", "train", "mnist", "--out", tmp_path / "new", "--data-dir",
                         tmp_path / "no-data")
    assert code == 2 and not (tmp_path / "new").exists()


def test_scratch_train_writes_a_marked_run_it_can_replace(tmp_path, mnist_root, capsys):
    out = tmp_path / "scratch"
    args = ["scratch", "train", "mnist", "--limit", "64", "--batch-size", "32", "--channels", "2,2",
            "--hidden", "8", "--out", out, "--json"]
    code, stdout, err = run_cli(capsys, *args)
    assert code == 0, err
    assert json.loads((out / MARKER).read_text())["kind"] == "scratch-train"
    assert json.loads(stdout)["test_accuracy"] == json.loads((out / "summary.json").read_text())["test_accuracy"]
    code, _, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "model.npz", "summary.json"]


@pytest.mark.parametrize("case", ["under_a_file", "unwritable", "long_name", "symlink"])
def test_bad_out_is_one_line_and_deletes_nothing(case, run_dir, tiny_folder, cache_dir, tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep")
    out, needle = {
        "under_a_file": (a_file / "run", "is a file"),
        "unwritable": (Path("/proc/cnnlab-test/run"), "not writable"),
        "long_name": (tmp_path / ("x" * 300), "300 bytes long"),
        "symlink": (tmp_path / "link", "symbolic link"),
    }[case]
    if case == "symlink":
        out.symlink_to(run_dir, target_is_directory=True)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, *train_args(tiny_folder, cache_dir, out, "--overwrite"))
    one_line_error(code, err, needle)
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------ one process per run directory


def test_another_process_cannot_train_into_a_held_run(run_dir, tiny_folder, cache_dir):
    """A real second process (--overwrite) while this one holds the run: one line naming our PID, nothing lost."""
    before = snapshot(run_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with lock_run_dir(run_dir):
        second = subprocess.run([sys.executable, "-m", "cnnlab.cli", *train_args(tiny_folder, cache_dir, run_dir,
                                                                                 "--overwrite")],
                                capture_output=True, text=True, env=env, timeout=120)
        assert snapshot(run_dir) == before
    one_line_error(second.returncode, second.stderr, f"PID {os.getpid()}", "in use")


def test_resume_while_the_run_is_held_names_the_pid(run_dir, capsys):
    with lock_run_dir(run_dir):
        code, _, err = run_cli(capsys, "train", "--resume", run_dir, "train.epochs=3", "--quiet")
    one_line_error(code, err, f"PID {os.getpid()}")


def test_overwrite_while_the_run_is_held_names_the_pid(run_dir, tiny_folder, cache_dir, capsys):
    before = snapshot(run_dir)
    with lock_run_dir(run_dir):
        code, _, err = run_cli(capsys, *train_args(tiny_folder, cache_dir, run_dir, "--overwrite"))
        assert snapshot(run_dir) == before
    one_line_error(code, err, f"PID {os.getpid()}")


def test_eval_of_a_run_in_use_is_refused_and_writes_nothing(run_dir, capsys):
    before = snapshot(run_dir)
    with lock_run_dir(run_dir):
        code, _, err = run_cli(capsys, "eval", run_dir)
        assert snapshot(run_dir) == before
    one_line_error(code, err, f"PID {os.getpid()}", "in use")
    code, _, _ = run_cli(capsys, "eval", run_dir, "--json")  # free again: eval writes its files
    assert code == 0 and (run_dir / "eval.json").is_file() and not list(run_dir.glob(".*tmp*"))


# ------------------------------------------------------------------ resume


def test_resume_records_overrides_and_keeps_the_old_config(run_dir, capsys):
    import yaml

    code, out, err = run_cli(capsys, "train", "--resume", run_dir, "train.epochs=3", "--json")
    assert code == 0, err
    assert json.loads(out)["epochs"] == 3 and "train.epochs: 2 -> 3" in err
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["epochs"] == 3
    history = yaml.safe_load((run_dir / "config_history.yaml").read_text())
    assert len(history) == 1 and history[0]["changes"] == {"train.epochs": [2, 3]}
    assert history[0]["config"]["train"]["epochs"] == 2


def test_resuming_a_finished_run_says_so_and_changes_nothing(run_dir, capsys):
    before = snapshot(run_dir)
    code, _, err = run_cli(capsys, "train", "--resume", run_dir, "--quiet")
    assert code == 0 and "already finished" in err and "at epoch" not in err
    assert snapshot(run_dir) == before


def test_resume_refuses_out(run_dir, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--resume", run_dir, "--out", tmp_path / "elsewhere")
    one_line_error(code, err, "drop --out")
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("content, needle", [
    (b"train: [1, 2\n", "not valid YAML"),
    (b"- just\n- a list\n", "must hold a mapping"),
    (b"name: caf\xe9\n", "not UTF-8"),
])
def test_resume_with_a_broken_config_yaml(run_dir, capsys, content, needle):
    (run_dir / "config.yaml").write_bytes(content)
    code, _, err = run_cli(capsys, "train", "--resume", run_dir)
    one_line_error(code, err, needle)


def test_resume_with_a_changed_architecture_names_the_first_mismatch(run_dir, capsys):
    before = snapshot(run_dir)
    code, _, err = run_cli(capsys, "train", "--resume", run_dir, "train.epochs=3", "model.filters=12")
    one_line_error(code, err, "does not fit the model", "first mismatch", "checkpoint (8,", "model (12,")
    assert snapshot(run_dir) == before  # config.yaml keeps the config the checkpoint was trained with


def test_resume_without_last_pt(run_dir, capsys):
    (run_dir / "last.pt").unlink()
    code, _, err = run_cli(capsys, "train", "--resume", run_dir)
    one_line_error(code, err, "no last.pt")


# ------------------------------------------------------------------ a run that diverges at once


def test_nan_before_the_first_logged_step(tiny_folder, cache_dir, tmp_path, capsys):
    out = tmp_path / "nan"
    code, _, err = run_cli(capsys, *train_args(tiny_folder, cache_dir, out, "model.norm=none", "optim.name=sgd",
                                               "optim.lr=1e12", "schedule.name=constant", "train.plots=true",
                                               "train.log_every=1000"))
    summary = json.loads((out / "summary.json").read_text())
    assert code == 1 and summary["status"] == "nonfinite_loss" and summary["nonfinite_step"] <= 2, err
    assert "last.pt" not in err and not (out / "last.pt").exists()
    named = [w.strip("();,") for w in err.split() if str(tmp_path) in w]
    assert named and all(Path(p).exists() for p in named), err


# ------------------------------------------------------------------ checkpoints


@pytest.mark.parametrize("key, value", [
    ("input_size", "abc"), ("input_size", [3, 16]), ("input_size", [3, -1, 16]),
    ("mean", [0.5]), ("std", [0.0, 0.0, 0.0]), ("classes", 3), ("mean", "nan"),
])
def test_malformed_checkpoint_metadata_is_one_line(run_dir, capsys, key, value):
    state = load_checkpoint(run_dir / "final.pt")
    state[key] = value
    save_checkpoint(run_dir / "final.pt", state)
    code, _, err = run_cli(capsys, "eval", run_dir, "--weights", "final.pt")
    one_line_error(code, err, f"'{key}'", "final.pt")


class Gadget:
    """A custom class: a checkpoint holding one needs unpickling, which cnnlab never does."""


def test_blocked_pickle_never_advises_weights_only_false(tmp_path):
    from cnnlab.errors import CnnlabError

    path = tmp_path / "gadget.pt"
    torch.save({"format": "cnnlab-checkpoint", "model": {}, "extra": Gadget()}, path)
    with pytest.raises(CnnlabError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "Gadget" in message and "never unpickles" in message
    for advice in ("weights_only", "can still be loaded", "trust", "\x1b"):
        assert advice not in message
