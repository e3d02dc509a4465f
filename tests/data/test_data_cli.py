"""``cnnlab data preview`` / ``info``: where the PNG goes, bounded arguments, one-line errors."""

import pytest

from cnnlab.cli import main


def _preview(capsys, root, cache_dir, *extra):
    code = main(["data", "preview", "folder", f"data.root={root}", f"data.cache_dir={cache_dir}", "--count", "4",
                 *map(str, extra)])
    _, err = capsys.readouterr()
    return code, err


def _is_one_error_line(err: str) -> bool:
    return err.startswith("cnnlab: error:") and err.count("\n") == 1


def test_preview_refuses_to_overwrite_a_text_file(tiny_folder, cache_dir, tmp_path, capsys):
    notes = tmp_path / "notes.png"  # the name says PNG, the content does not
    notes.write_text("my notes")
    code, err = _preview(capsys, tiny_folder, cache_dir, "--out", notes)
    assert code == 2 and _is_one_error_line(err) and "already exists; pass --overwrite" in err
    code, err = _preview(capsys, tiny_folder, cache_dir, "--out", notes, "--overwrite")
    assert code == 2 and _is_one_error_line(err) and "carries no cnnlab mark" in err
    assert notes.read_text() == "my notes"
    code, err = _preview(capsys, tiny_folder, cache_dir, "--out", tmp_path / "notes.txt")
    assert code == 2 and _is_one_error_line(err) and "must name a .png file" in err


def test_preview_refuses_a_folder_unless_the_path_ends_with_a_slash(tiny_folder, cache_dir, tmp_path, capsys):
    folder = tmp_path / "plots"
    folder.mkdir()
    code, err = _preview(capsys, tiny_folder, cache_dir, "--out", folder)
    assert code == 2 and _is_one_error_line(err) and "is a folder" in err
    assert list(folder.iterdir()) == []
    code, err = _preview(capsys, tiny_folder, cache_dir, "--out", f"{folder}/")
    assert code == 0 and [p.name for p in folder.iterdir()] == ["grid.png"]


def test_preview_replaces_its_own_png_only_with_overwrite(tiny_folder, cache_dir, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert _preview(capsys, tiny_folder, cache_dir, "--out", out)[0] == 0
    first = out.read_bytes()
    assert first.startswith(b"\x89PNG")
    code, err = _preview(capsys, tiny_folder, cache_dir, "--out", out, "--seed", "1")
    assert code == 2 and "already exists; pass --overwrite" in err and out.read_bytes() == first
    assert _preview(capsys, tiny_folder, cache_dir, "--out", out, "--seed", "1", "--overwrite")[0] == 0
    second = out.read_bytes()
    assert second != first and sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["grid.png"]


def test_a_failed_preview_write_leaves_the_old_png(tiny_folder, cache_dir, tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    out = tmp_path / "grid.png"
    assert _preview(capsys, tiny_folder, cache_dir, "--out", out)[0] == 0
    before = out.read_bytes()

    def disk_full(self, fname, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", disk_full)
    code, err = _preview(capsys, tiny_folder, cache_dir, "--out", out, "--seed", "1", "--overwrite")
    assert code == 2 and _is_one_error_line(err) and "No space left on device" in err
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir() if p.is_file()] == ["grid.png"]


@pytest.mark.parametrize("args, message", [
    (["--count", "0"], "--count must be between 1 and 1024"),
    (["--count", "100000"], "--count must be between 1 and 1024"),
    (["--seed", "-1"], "--seed must be between 0"),
    (["--seed", "123456789012345678901"], "--seed must be between 0"),
    (["--out", "/nonexistent-folder/grid.png"], "does not exist"),
])
def test_preview_arguments_are_bounded(tiny_folder, cache_dir, tmp_path, capsys, args, message):
    code, err = _preview(capsys, tiny_folder, cache_dir, *args)
    assert code == 2 and _is_one_error_line(err) and message in err


def test_info_with_a_data_dir_that_does_not_exist(tmp_path, capsys):
    assert main(["data", "info", "mnist", "--data-dir", str(tmp_path / "typo")]) == 2
    err = capsys.readouterr().err
    assert _is_one_error_line(err) and "does not exist" in err and "typo" in err
