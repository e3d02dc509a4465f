"""Under torchrun a data or config error is one line from rank 0 (not one per rank) that says the
launcher's report follows, and a batch larger than the data is clamped as in one process."""

from __future__ import annotations

from tests.train.test_distributed import FAST, torchrun


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "cnnlab: error:" in line]


def test_an_error_every_rank_meets_is_printed_once(tmp_path, mnist_root):
    proc = torchrun(["-m", "cnnlab", "train", "mnist-fast", *FAST, "data.limit_train=5", "--out", str(tmp_path / "r")])
    assert proc.returncode != 0
    assert error_lines(proc.stderr) == [
        "cnnlab: error: data.limit_train=5 is fewer than the 10 classes with training images, so some class would "
        "have none; use data.limit_train=10 or more; torchrun's own report of the stopped processes follows"]
    assert not (tmp_path / "r").exists()


def test_a_batch_larger_than_the_data_is_clamped_under_torchrun_too(tmp_path, mnist_root):
    proc = torchrun(["-m", "cnnlab", "train", "mnist-fast", *FAST, "data.limit_train=21", "train.epochs=1",
                     "--out", str(tmp_path / "r")])
    assert proc.returncode == 0, proc.stderr[-2000:]
    notices = [line for line in proc.stderr.splitlines() if line.startswith("notice: data.batch_size")]
    assert notices == ["notice: data.batch_size=128 is larger than the 21 training images; using batches of 20 "
                       "(10 per rank)"]


BOOM = """\
import os, sys
import cnnlab.train.run as run_module
from cnnlab.cli import main

def boom(*args, **kwargs):
    rank = os.environ["RANK"]
    raise RuntimeError("disk on fire" if sys.argv[1] == "same" else f"rank {rank} alone broke")

run_module.train = boom
sys.exit(main(["train", "mnist-fast", "--out", sys.argv[2]]))
"""


def test_an_internal_error_every_rank_meets_is_printed_once(tmp_path, mnist_root):
    script = tmp_path / "boom.py"
    script.write_text(BOOM)
    proc = torchrun([str(script), "same", str(tmp_path / "r")])
    assert proc.returncode != 0
    assert error_lines(proc.stderr) == [
        "cnnlab: error: internal error: RuntimeError: disk on fire; rerun with --debug for the traceback; "
        "torchrun's own report of the stopped processes follows"]


def test_internal_errors_that_differ_are_printed_by_each_rank(tmp_path, mnist_root):
    script = tmp_path / "boom.py"
    script.write_text(BOOM)
    proc = torchrun([str(script), "differ", str(tmp_path / "r")])
    assert proc.returncode != 0
    assert sorted(error_lines(proc.stderr)) == [
        f"cnnlab: error: internal error: RuntimeError: rank {rank} alone broke; rerun with --debug for the "
        "traceback; torchrun's own report of the stopped processes follows" for rank in (0, 1)]
