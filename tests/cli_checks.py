"""Running ``cnnlab`` in-process and checking its one-line errors (shared by the hardening tests)."""

from __future__ import annotations

from cnnlab.cli import main


def cli(capsys, *argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``cnnlab ARGV``."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str, *needles: str) -> None:
    """Exit 2 with exactly one ``cnnlab: error:`` line (no internal error) containing every needle."""
    assert code == 2 and err.startswith("cnnlab: error: ") and err.count("\n") == 1, err
    assert "internal error" not in err and all(n in err for n in needles), err
