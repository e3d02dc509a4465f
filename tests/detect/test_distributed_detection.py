"""Detection under torchrun (issue 19): 2 gloo ranks match one process, hold identical weights, resume exactly."""

from __future__ import annotations

import json

import pytest
import torch

from cnnlab.config import load_config
from tests.train.test_distributed import WORKER, epoch_lines, state_hash, torchrun

pytest.importorskip("torchmetrics")

SMALL = ["data.scenes.size=64", "data.scenes.train=160", "data.scenes.test=48", "data.image_size=64",
         "data.val_fraction=0.2", "data.batch_size=16", "data.eval_batch_size=32", "model.width=8",
         "detect.channels=16", "train.threads=1", "train.plots=false", "train.log_every=1000"]


@pytest.fixture
def small(tmp_path, mnist_root):
    return [*SMALL, f"data.cache_dir={tmp_path / 'cache'}", f"data.data_dir={mnist_root}"]


def test_two_ranks_train_a_detector_like_one_process(tmp_path, small):
    from cnnlab.train.run import train

    overrides = [*small, "train.epochs=2"]
    single = train(load_config("detect-mnist-scenes", overrides), tmp_path / "one", quiet=True)
    run = tmp_path / "two"
    proc = torchrun(["-m", "cnnlab", "train", "detect-mnist-scenes", *overrides, "--out", str(run), "--json"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # rank 0 alone prints: exactly one JSON object
    assert summary == json.loads((run / "summary.json").read_text())
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert (summary["world_size"], summary["dist_backend"], single["world_size"]) == (2, "gloo", 1)
    # the same global batches: the steps and images of one process; the whole test split scored
    assert (summary["steps"], summary["train_images"]) == (single["steps"], single["train_images"])
    assert summary["split_sizes"] == single["split_sizes"]
    assert summary["test_map50"] is not None and single["test_map50"] is not None
    assert abs(summary["test_map50"] - single["test_map50"]) < 0.1  # per-rank augmentation and BN batches
    two, one = epoch_lines(run), epoch_lines(tmp_path / "one")
    assert [e["epoch"] for e in two] == [1, 2]
    assert two[-1]["train_loss"] == pytest.approx(one[-1]["train_loss"], rel=0.1)
    # rank 0's mAP is over the whole validation split: re-scoring best.pt's epoch in one process agrees
    assert summary["best_val_map50"] == max(e["val_map50"] for e in two)


def test_detector_ranks_hold_identical_weights_and_a_killed_run_resumes_exactly(tmp_path, small):
    overrides = [*small, "train.epochs=2"]
    ref, hashes = tmp_path / "ref", tmp_path / "hashes"
    hashes.mkdir()
    proc = torchrun([str(WORKER), "--preset", "detect-mnist-scenes", str(ref), str(hashes), *overrides])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (hashes / "rank0.txt").read_text(), (hashes / "rank1.txt").read_text()
    assert rank0 == rank1  # weights and (averaged) batch-norm statistics agree on both ranks

    run, died = tmp_path / "run", tmp_path / "died"
    died.mkdir()
    proc = torchrun([str(WORKER), "--preset", "detect-mnist-scenes", "--die-rank", "1", str(run), str(died),
                     *overrides])
    assert proc.returncode != 0
    assert not (run / "summary.json").exists() and [e["epoch"] for e in epoch_lines(run)] == [1]
    proc = torchrun(["-m", "cnnlab", "train", "--resume", str(run)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["epochs"], summary["world_size"]) == ("completed", 2, 2)
    assert epoch_lines(run) == [{**e, "seconds": a["seconds"]} for e, a in zip(epoch_lines(ref), epoch_lines(run))]
    final = torch.load(run / "final.pt", weights_only=True)["model"]
    assert state_hash(final) + "\n" == rank0  # exact: the resumed run ends with the uninterrupted weights
