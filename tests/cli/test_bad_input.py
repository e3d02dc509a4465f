"""Every bad argument, file or folder a user can type is one line on stderr, never a traceback (issue 7)."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import yaml

from cnnlab.cli import main


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> bool:
    return err.startswith("cnnlab: error: ") and err.count("\n") == 1 and len(err) < 500


@pytest.fixture
def fake_run(tmp_path):
    """A run directory as `cnnlab train` leaves it: config.yaml and an (untrained) final.pt."""
    from cnnlab.config import dump_config, load_config
    from cnnlab.models import create_model
    from cnnlab.checkpoint import save_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config("folder-convnet", ["data.image_size=16", "model.filters=8"])
    (run / "config.yaml").write_text(dump_config(cfg))
    model = create_model(cfg.model.name, **{**cfg.model.options, "in_channels": 3, "num_classes": 3, "image_size": 16})
    save_checkpoint(run / "final.pt", {"model": model.state_dict(), "input_size": [3, 16, 16],
                                       "classes": ["a", "b", "c"]})
    return run


def write_png(path, size=16):
    from PIL import Image

    Image.fromarray(np.full((size, size, 3), 128, dtype=np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- the CLI's last line of defence


@pytest.mark.parametrize("exc", [
    PermissionError(errno.EACCES, "Permission denied", "/root/secret"),
    IsADirectoryError(errno.EISDIR, "Is a directory", "/tmp"),
    NotADirectoryError(errno.ENOTDIR, "Not a directory", "/etc/passwd/x"),
    OSError(errno.ENAMETOOLONG, "File name too long", "x" * 2000),
    OSError(errno.ENOSPC, "No space left on device"),
])
def test_file_errors_are_one_line_exit_2(capsys, monkeypatch, exc):
    def fail(args):
        raise exc

    monkeypatch.setattr("cnnlab.commands.presets.run", fail)
    code, _, err = run_cli(capsys, "presets")
    assert code == 2 and one_line(err) and exc.strerror in err


def test_an_unexpected_exception_is_one_line_exit_1_and_debug_shows_it(capsys, monkeypatch):
    def fail(args):
        raise RuntimeError("boom\n" + "detail " * 500)

    monkeypatch.setattr("cnnlab.commands.presets.run", fail)
    code, _, err = run_cli(capsys, "presets")
    assert code == 1 and one_line(err)
    assert "internal error: RuntimeError: boom detail" in err and err.rstrip().endswith("--debug for the traceback")
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "presets"])

    def interrupted(args):  # Ctrl-C is not swallowed by the last line of defence
        raise KeyboardInterrupt

    monkeypatch.setattr("cnnlab.commands.presets.run", interrupted)
    code, _, err = run_cli(capsys, "presets")
    assert code == 130 and "interrupted" in err


def test_any_error_line_is_capped(capsys):
    code, _, err = run_cli(capsys, "train", "x" * 5000)
    assert code == 2 and one_line(err)


# ----------------------------------------------------------------------------- config values through the CLI


@pytest.mark.parametrize("override, message", [
    ("optim.lr=.inf", "not a finite number"),
    ("train.seed=-1", "train.seed=-1 is out of range"),
    ("train.seed=123456789012345678901", "is out of range"),
    ("train.threads=100000", "train.threads=100000 is out of range"),
    ("data.batch_size=100000000", "data.batch_size=100000000 is out of range"),
    ("train.epochs=1e300", "train.epochs must be an integer"),
])
def test_config_values_out_of_range(capsys, tmp_path, override, message):
    code, _, err = run_cli(capsys, "train", "mnist-fast", override, "--out", tmp_path / "run")
    assert code == 2 and one_line(err) and message in err
    assert not (tmp_path / "run").exists()


def test_alias_bomb_config_file_is_a_short_line(capsys, tmp_path):
    parts = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]"
                                                 for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("model:\n  name: convnet\n  filters: [" + ", ".join(parts) + "]\n")
    code, _, err = run_cli(capsys, "train", bomb, "--out", tmp_path / "run")
    assert code == 2 and one_line(err) and "expands to more than" in err


# ----------------------------------------------------------------------------- eval and predict


@pytest.mark.parametrize("top", ["-5", "0", "100000"])
def test_eval_top_is_checked_before_anything_loads(capsys, tmp_path, top):
    # The run directory does not exist: the range check must come first.
    code, _, err = run_cli(capsys, "eval", tmp_path / "missing", "--top", top)
    assert code == 2 and one_line(err) and f"--top {top} is out of range" in err


def test_evaluate_run_checks_top_too(tmp_path):
    from cnnlab.errors import CnnlabError
    from cnnlab.report.evaluation import evaluate_run

    with pytest.raises(CnnlabError, match="top 100000 is out of range"):
        evaluate_run(tmp_path / "missing", top=100000)


@pytest.mark.parametrize("command", [["eval"], ["predict"]])
def test_a_folder_that_is_not_a_run(capsys, tmp_path, command):
    image = write_png(tmp_path / "a.png")
    not_a_run = tmp_path / "photos"
    not_a_run.mkdir()
    code, _, err = run_cli(capsys, *command, not_a_run, *([image] if command == ["predict"] else []))
    assert code == 2 and one_line(err) and "is not a cnnlab run directory (no config.yaml)" in err
    code, _, err = run_cli(capsys, *command, image, *([image] if command == ["predict"] else []))
    assert code == 2 and one_line(err) and "is a file, not a run directory" in err


def test_a_run_config_that_is_not_utf8(capsys, fake_run, tmp_path):
    (fake_run / "config.yaml").write_bytes(b"name: \xff\xfe\n")
    code, _, err = run_cli(capsys, "predict", fake_run, write_png(tmp_path / "a.png"))
    assert code == 2 and one_line(err) and "is not UTF-8 text" in err


def test_predict_top_k(capsys, fake_run, tmp_path):
    image = write_png(tmp_path / "a.png")
    code, _, err = run_cli(capsys, "predict", fake_run, image, "-k", "0")
    assert code == 2 and one_line(err) and "-k/--top-k 0 must be at least 1" in err
    code, out, _ = run_cli(capsys, "predict", fake_run, image, "-k", "1000000", "--json")  # more than the classes: all
    assert code == 0 and len(json.loads(out)["predictions"][0]["top"]) == 3


def test_predict_a_folder_classifies_the_images_inside(capsys, fake_run, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("b.png", "a.jpg", "c.BMP"):
        write_png(photos / name)
    (photos / "notes.txt").write_text("not an image")
    (photos / "sub").mkdir()
    write_png(photos / "sub" / "deeper.png")  # one level only
    code, out, err = run_cli(capsys, "predict", fake_run, photos, "--json")
    assert code == 0, err
    assert [p["image"] for p in json.loads(out)["predictions"]] == [str(photos / n) for n in ("a.jpg", "b.png", "c.BMP")]


def test_predict_inputs_that_are_not_images(capsys, fake_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "predict", fake_run, empty)
    assert code == 2 and one_line(err) and "is a folder with no image files" in err
    text = tmp_path / "notes.png"
    text.write_text("hello")
    code, _, err = run_cli(capsys, "predict", fake_run, text)
    assert code == 2 and one_line(err) and "cannot read image" in err


@pytest.mark.parametrize("side", [12, 16])  # 144 pixels: Pillow only warns; 256: Pillow refuses
def test_predict_a_decompression_bomb(capsys, fake_run, tmp_path, monkeypatch, side):
    from PIL import Image

    image = write_png(tmp_path / "bomb.png", size=side)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a bomb is an image above this many pixels
    code, _, err = run_cli(capsys, "predict", fake_run, image)
    assert code == 2 and one_line(err) and "too large to decode safely" in err


# ----------------------------------------------------------------------------- profile


@pytest.mark.parametrize("argv, message", [
    (["--threads", "100000"], "--threads 100000 is out of range"),
    (["--threads", "0"], "--threads 0 is out of range"),
    (["--batch", "100000000"], "--batch 100000000 is out of range"),
    (["--warmup", "-1"], "--warmup -1 is out of range"),
    (["--repeats", "100000000"], "--repeats 100000000 is out of range"),
    (["--input", "3,100000,100000"], "needs about 120.0 GB for the input batch alone"),
    (["--device", "nonsense"], "--device 'nonsense' is not a usable device"),
])
def test_profile_numbers_are_checked(capsys, argv, message):
    code, _, err = run_cli(capsys, "profile", "lenet5", *argv)
    assert code == 2 and one_line(err) and message in err


def test_profile_memory_estimate_scales_a_small_probe(capsys, monkeypatch):
    # 2 GB allowed: a 1x4096x4096 convnet input is 67 MB, its first feature map about 8x that.
    monkeypatch.setattr("cnnlab.profile.memory.memory_limit_bytes", lambda: 2 << 30)
    code, _, err = run_cli(capsys, "profile", "convnet", "--input", "1,4096,4096", "filters=8", "--no-timing")
    assert code == 2 and one_line(err) and "scaled from a 256x256 probe" in err and "needs about" in err


def test_profile_memory_estimate_counts_the_batch(capsys, monkeypatch):
    monkeypatch.setattr("cnnlab.profile.memory.memory_limit_bytes", lambda: 60 << 20)
    code, _, err = run_cli(capsys, "profile", "lenet5", "--batch", "6000")
    assert code == 2 and one_line(err) and "activations" in err and "with --batch 6000" in err


def test_check_memory_passes_what_fits():
    from cnnlab.models import create_model
    from cnnlab.profile.memory import check_memory, probe_size

    assert probe_size((3, 1024, 512)) == (3, 360, 182)  # about 256x256 pixels, the same aspect
    check_memory(lambda size: create_model("lenet5"), (1, 32, 32), 64, training=True, what="x", limit=1 << 30)
    with pytest.raises(Exception, match="needs about"):
        check_memory(lambda size: create_model("lenet5"), (1, 32, 32), 4096, training=True, what="x", limit=1 << 20)


def test_profile_run_directory_uses_the_run_config(capsys, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"model": {"name": "convnet", "filters": 8, "blocks": 2}}))
    (run / "summary.json").write_text("{not json")
    code, _, err = run_cli(capsys, "profile", run, "--no-timing")
    assert code == 2 and one_line(err) and "summary.json lacks 'input_size'" in err
