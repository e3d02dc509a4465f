"""Under torchrun an error line is printed once per launch: the key that tells launches apart
(cli._launch_key) must not join two launches, or the second's error is never printed."""

from __future__ import annotations

import tempfile

import pytest

from cnnlab.cli import main

BAD = ["presets", "no-such-preset-anywhere"]


@pytest.fixture
def rank0(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    for key in ("TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_ERROR_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_PORT", "29500")
    return monkeypatch


def errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("cnnlab: error:")]


def elastic(monkeypatch, error_file: str) -> None:
    """The variables torchrun's agent gives a rank (run id 'none' without --rdzv-id or --standalone)."""
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", error_file)


def test_ranks_started_by_hand_from_one_shell_print_every_launchs_error(rank0, capsys):
    # RANK/MASTER_PORT set by a script, twice from the same shell: the parent pid and port are the same
    assert main(BAD) == 2 and len(errors(capsys)) == 1
    assert main(BAD) == 2 and len(errors(capsys)) == 1  # the second launch's error is printed too


def test_two_torchrun_launches_with_one_launcher_pid_each_print_their_error(rank0, capsys, tmp_path):
    # a reused pid, the default run id and port: only torchrun's per-launch log folder differs
    elastic(rank0, str(tmp_path / "torchelastic_a" / "none_x1" / "attempt_0" / "0" / "error.json"))
    assert main(BAD) == 2 and len(errors(capsys)) == 1
    elastic(rank0, str(tmp_path / "torchelastic_b" / "none_x2" / "attempt_0" / "0" / "error.json"))
    assert main(BAD) == 2 and len(errors(capsys)) == 1


def test_the_ranks_of_one_launch_print_a_shared_error_once(rank0, capsys, tmp_path):
    attempt = tmp_path / "torchelastic_a" / "none_x1" / "attempt_0"
    elastic(rank0, str(attempt / "0" / "error.json"))
    assert main(BAD) == 2 and len(errors(capsys)) == 1
    elastic(rank0, str(attempt / "1" / "error.json"))  # local rank 1 of the same launch: quiet
    assert main(BAD) == 2 and errors(capsys) == []
    elastic(rank0, str(tmp_path / "torchelastic_a" / "none_x1" / "attempt_1" / "1" / "error.json"))
    assert main(BAD) == 2 and len(errors(capsys)) == 1  # a restarted attempt reports again


def test_without_a_log_folder_the_launcher_is_told_apart_by_its_start_time(rank0, capsys, monkeypatch):
    import cnnlab.cli as cli

    elastic(rank0, "")  # torchrun --log-dir /dev/null: no error file
    key = cli._launch_key()
    assert key is not None and key.startswith("pid:")
    assert main(BAD) == 2 and len(errors(capsys)) == 1
    assert main(BAD) == 2 and errors(capsys) == []  # the same launcher: one line
    monkeypatch.setattr(cli, "_launch_key", lambda: key.replace("pid:", "pid:reused-"))
    assert main(BAD) == 2 and len(errors(capsys)) == 1
