"""The output-directory policy: marker first, one lock per run, --overwrite only for marked runs."""

import json
import os

import pytest

from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_staged_bytes, write_staged_text
from cnnlab.rundir import (MARKER, check_out_dir, is_run_dir, lock_holder, lock_run_dir, open_run_dir, output_kind,
                           staged_run_dir)


def test_a_new_run_directory_is_marked_and_locked(tmp_path):
    out = tmp_path / "runs" / "a"
    check_out_dir(out, overwrite=False)
    assert not (tmp_path / "runs").exists()  # validation creates nothing
    with open_run_dir(out, kind="train") as run:
        marker = json.loads((run / MARKER).read_text())
        assert marker["pid"] == os.getpid() and marker["kind"] == "train" and len(marker["run_id"]) == 32
        assert {"created", "cnnlab_version"} <= set(marker)
        assert lock_holder(out) == os.getpid()
        with pytest.raises(CnnlabError, match=f"in use by another cnnlab process \\(PID {os.getpid()}\\)"):
            with open_run_dir(out, overwrite=True):
                pass
    assert lock_holder(out) is None and is_run_dir(out)
    assert [p.name for p in tmp_path.joinpath("runs").iterdir()] == ["a"]  # no temporary folder left


def test_overwrite_empties_a_marked_run_and_refuses_anything_else(tmp_path):
    out = tmp_path / "run"
    with open_run_dir(out):
        (out / "old.txt").write_text("old")
        (out / "sub").mkdir()
    first = json.loads((out / MARKER).read_text())["run_id"]
    with open_run_dir(out, overwrite=True):
        assert sorted(p.name for p in out.iterdir()) == [MARKER]
    assert json.loads((out / MARKER).read_text())["run_id"] != first

    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "config.yaml").write_text("name: mine\n")
    with pytest.raises(CnnlabError, match="not a cnnlab run directory"):
        check_out_dir(lookalike, overwrite=True)
    with pytest.raises(CnnlabError, match="not a cnnlab run directory"):
        with open_run_dir(lookalike, overwrite=True):
            pass
    assert (lookalike / "config.yaml").read_text() == "name: mine\n"


def test_a_link_inside_a_replaced_run_is_removed_not_followed(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "data.txt").write_text("precious")
    out = tmp_path / "run"
    with open_run_dir(out):
        (out / "link").symlink_to(keep, target_is_directory=True)
    with open_run_dir(out, overwrite=True):
        pass
    assert (keep / "data.txt").read_text() == "precious" and not (out / "link").exists()


def test_resume_lock_adopts_an_old_unmarked_run_and_excludes_others(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text("name: x\n")
    with lock_run_dir(old):
        assert lock_holder(old) == os.getpid()
        with pytest.raises(CnnlabError, match=f"PID {os.getpid()}"):
            with lock_run_dir(old):
                pass
    assert is_run_dir(old) and (old / "config.yaml").read_text() == "name: x\n"


def test_an_existing_directory_suggests_resume_only_where_the_command_has_it(tmp_path):
    out = tmp_path / "run"
    with open_run_dir(out, kind="predict"):
        pass
    with pytest.raises(CnnlabError) as plain:
        check_out_dir(out, overwrite=False)
    assert "--overwrite" in str(plain.value) and "--resume" not in str(plain.value)
    with pytest.raises(CnnlabError, match="--resume to continue it"):
        check_out_dir(out, overwrite=False, resumable=True)
    with pytest.raises(CnnlabError) as predict:  # predict --out, make-scenes --out have no --resume
        with open_run_dir(out, kind="predict"):
            pass
    assert "--resume" not in str(predict.value)


def test_a_staged_folder_replaces_the_old_one_only_once_it_is_complete(tmp_path):
    out = tmp_path / "scenes"
    with staged_run_dir(out, kind="scenes", last=("scenes.json",)) as staging:
        write_staged_bytes(staging / "a.png", b"old")
        write_staged_text(staging / "scenes.json", "{}")
    assert sorted(p.name for p in out.iterdir()) == [".cnnlab-run", "a.png", "scenes.json"]
    with pytest.raises(KeyboardInterrupt):  # a failure part-way: the old folder stays as it was
        with staged_run_dir(out, overwrite=True, kind="scenes") as staging:
            write_staged_bytes(staging / "a.png", b"new")
            assert not staging.is_relative_to(out)
            raise KeyboardInterrupt
    assert (out / "a.png").read_bytes() == b"old" and output_kind(out) == "scenes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenes"]  # no staging folder left
    with staged_run_dir(out, overwrite=True, kind="scenes") as staging:
        write_staged_bytes(staging / "b.png", b"new")
    assert sorted(p.name for p in out.iterdir()) == [".cnnlab-run", "b.png"]


def test_a_staged_folder_follows_the_output_policy(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(CnnlabError, match="--overwrite"):
        with staged_run_dir(mine, kind="scenes") as staging:
            write_staged_text(staging / "x", "x")
    with pytest.raises(CnnlabError, match="not a cnnlab run directory"):
        with staged_run_dir(mine, overwrite=True, kind="scenes") as staging:
            write_staged_text(staging / "x", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"] and (mine / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("name", ["cnnlab.rundir", "cnnlab.fileio"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_a_staged_write_never_replaces_a_file(tmp_path):
    (tmp_path / "user.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        write_staged_text(tmp_path / "user.txt", "new")
    assert (tmp_path / "user.txt").read_text() == "keep"
