"""Distributed data-parallel training: 2 gloo ranks under torchrun on the CPU, against one process.

The process tests launch ``python -m torch.distributed.run`` (torchrun) as a subprocess, one
thread per rank. Sharding and metric reduction are also checked without any process group.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.config import load_config
from cnnlab.data.loader import DeviceBatches
from cnnlab.errors import CnnlabError
from cnnlab.train.distributed import (ShardedBatches, choose_backend, eval_shard, launch_env, metrics_from_sums,
                                      pack_sums, per_rank_batch, rank_seed, shard_sums, unpack_sums)
from cnnlab.train.evaluate import evaluate

SRC = Path(cnnlab.__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("ddp_hash_worker.py")
FAST = ["train.threads=1", "train.plots=false"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], nproc: int = 2, timeout: float = 240) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=N ARGS`` with this checkout's cnnlab first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
           f"--master_port={free_port()}", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def state_hash(state: dict) -> str:
    sys.path.insert(0, str(WORKER.parent))
    try:
        from ddp_hash_worker import state_hash as hash_
    finally:
        sys.path.remove(str(WORKER.parent))
    return hash_(state)


def epoch_lines(run: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r["type"] == "epoch"]


# ----------------------------------------------------------------------------- without processes


def _batches(n: int = 50, batch: int = 8, seed: int = 3) -> DeviceBatches:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return DeviceBatches(images, torch.arange(n) % 10, batch, shuffle=True, drop_last=True, seed=seed)


@pytest.mark.parametrize("world", [1, 2, 4])
def test_every_index_once_per_epoch_over_ranks(world):
    full = _batches()
    shards = [ShardedBatches(full, r, world, rank_seed(3, r)) for r in range(world)]
    for epoch in (0, 1):
        per_rank = [torch.cat([y for _, y in s.epoch(epoch)]) for s in shards]
        assert all(len(s) == len(full) for s in shards)  # the steps of an epoch are one process's
        assert {len(p) for p in per_rank} == {len(full) * 8 // world}
        # Global batch k over all ranks is exactly the one-process batch k (labels identify images here).
        single = torch.cat([y for _, y in full.epoch(epoch)])
        for k in range(len(full)):
            together = torch.cat([p[k * 8 // world:(k + 1) * 8 // world] for p in per_rank])
            assert sorted(together.tolist()) == sorted(single[k * 8:(k + 1) * 8].tolist())
        ids = torch.cat([torch.cat([(x[:, 0, 0, 0] * 255).round().long() for x, _ in s.epoch(epoch)])
                         for s in shards])  # pixel value = image index
        assert len(ids) == len(set(ids.tolist())) == len(full) * 8  # no image twice in an epoch
        assert set(ids.tolist()) == set(full.order(epoch)[:len(full) * 8].tolist())  # exactly the epoch's used ones
    # resume: starting at batch 2 yields the tail of the same shards
    tail = [y for _, y in shards[0].epoch(1, start_batch=2)]
    assert torch.equal(torch.cat(tail), torch.cat([y for _, y in shards[0].epoch(1)][2:]))


def test_epochs_differ_and_global_batch_must_divide():
    full = _batches()
    s = ShardedBatches(full, 0, 2, 0)
    assert not torch.equal(s.order(0), s.order(1))
    with pytest.raises(CnnlabError, match=r"data.batch_size=8 \(the global batch\) is not divisible by the 3 ranks"):
        ShardedBatches(full, 0, 3, 0)
    assert per_rank_batch(128, 4) == 32
    with pytest.raises(CnnlabError, match="fewer than one global batch"):
        ShardedBatches(_batches(n=6), 0, 2, 0)


def test_eval_shards_and_reduced_metrics_equal_the_whole_split():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 10))
    full = DeviceBatches(torch.randint(0, 256, (37, 1, 2, 2), dtype=torch.uint8), torch.randint(0, 10, (37,)), 5)
    whole = evaluate(model, full)
    for world in (2, 3, 40):  # 40 ranks: some shards are empty
        shards = [eval_shard(full, r, world) for r in range(world)]
        assert sum(len(s.images) for s in shards) == 37
        assert torch.equal(torch.cat([s.labels for s in shards]), full.labels)
        reduced = metrics_from_sums(sum(shard_sums(model, s) for s in shards))  # what all_reduce adds up
        assert reduced.count == whole.count == 37
        assert reduced.accuracy == pytest.approx(whole.accuracy, abs=1e-12)
        assert reduced.loss == pytest.approx(whole.loss, rel=1e-6)
    # with test-time augmentation too (the final test of a DDP run with train.tta)
    conv = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Flatten(), nn.Linear(3 * 6 * 6, 10))
    images = DeviceBatches(torch.randint(0, 256, (23, 1, 8, 8), dtype=torch.uint8), torch.randint(0, 10, (23,)), 4)
    for tta in ("flip", "flip-translate"):
        whole, plain = evaluate(conv, images, tta=tta), evaluate(conv, images)
        assert whole.loss != pytest.approx(plain.loss, rel=1e-6)  # TTA changes the logits
        reduced = metrics_from_sums(sum(shard_sums(conv, eval_shard(images, r, 3), tta=tta) for r in range(3)))
        assert (reduced.count, reduced.accuracy) == (23, pytest.approx(whole.accuracy, abs=1e-12))
        assert reduced.loss == pytest.approx(whole.loss, rel=1e-6)
    # the trainer's running sums survive the float64 packing all_reduce sends
    sums = {"loss": torch.tensor(12.5, dtype=torch.float64), "correct": torch.tensor(41), "count": torch.tensor(64)}
    two = unpack_sums(pack_sums(sums) + pack_sums(sums))
    assert (two["loss"].item(), two["correct"].item(), two["count"].item()) == (25.0, 82, 128)
    assert two["count"].dtype == torch.int64


def test_module_examples():
    import doctest

    import cnnlab.train.distributed as module

    assert doctest.testmod(module).failed == 0


def test_launch_env_backend_and_seeds():
    assert launch_env({}) is None
    assert launch_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}).world_size == 2
    with pytest.raises(CnnlabError, match="launch distributed runs with torchrun"):
        launch_env({"RANK": "2", "WORLD_SIZE": "2"})
    assert choose_backend("auto", torch.device("cpu")) == "gloo"
    assert choose_backend("auto", torch.device("cuda"), nccl_available=True) == "nccl"
    with pytest.raises(CnnlabError, match="set train.dist_backend=gloo"):
        choose_backend("nccl", torch.device("cpu"), nccl_available=False)
    assert rank_seed(5, 0) == 5 and len({rank_seed(5, r) for r in range(8)}) == 8


@pytest.mark.parametrize("overrides, message", [
    (["data.batch_size=129"], "not divisible by the 2 ranks"),
    (["train.sync_bn=true"], "train.sync_bn=true needs CUDA GPUs"),
    (["train.unfreeze_every=1"], "DistributedDataParallel does not support"),
    (["train.dist_backend=nccl"], "train.dist_backend=nccl needs CUDA GPUs"),
])
def test_refusals_before_the_group_is_joined(overrides, message):
    from cnnlab.train.distributed import LaunchEnv, check_options

    cfg = load_config("mnist-fast", overrides)
    with pytest.raises(CnnlabError, match=message):
        check_options(cfg, torch.device("cpu"), LaunchEnv(0, 2, 0))
    assert check_options(load_config("mnist-fast"), torch.device("cpu"), LaunchEnv(1, 2, 1)) == "gloo"


def test_bench_ddp_table_and_arguments():
    from cnnlab.bench.ddp import compare_ranks_threads, format_table, label

    assert label(2, 1) == "2 ranks x 1 thread" and label(1, 2) == "1 rank x 2 threads"
    with pytest.raises(CnnlabError, match="--ranks must be >= 2"):
        compare_ranks_threads("mnist-classic", ranks=1)
    payload = {"preset": "mnist-classic", "overrides": ["train.epochs=1"], "repeats": 1, "ranks": 2,
               "threads_per_rank": 1, "ddp_over_threads": 1.5, "ddp_speedup": 1.8, "threads_speedup": 1.2,
               "medians": {label(2, 1): {"images_per_second": 1800.0, "train_seconds": 10.0, "test_accuracy": 0.98},
                           label(1, 2): {"images_per_second": 1200.0, "train_seconds": 15.0, "test_accuracy": 0.98},
                           label(1, 1): {"images_per_second": 1000.0, "train_seconds": 18.0, "test_accuracy": 0.98}}}
    lines = format_table(payload)
    assert any(line.startswith("2 ranks x 1 thread") and "1800" in line for line in lines)
    assert lines[-1] == ("2 ranks x 1 thread: 1.50x the images/s of 1 rank x 2 threads; over 1 rank x 1 thread: "
                         "1.80x with ranks, 1.20x with threads")


# ----------------------------------------------------------------------------- through torchrun


def test_two_ranks_train_mnist_fast_like_one_process(tmp_path, mnist_root):
    """Same run-directory files, one summary.json, metrics over the whole training set, >= 98%."""
    from cnnlab.train.run import train

    overrides = [*FAST, "data.limit_train=30000", "train.tta=translate"]  # the final test with TTA on both
    single = train(load_config("mnist-fast", overrides), tmp_path / "one", quiet=True)
    run = tmp_path / "two"
    proc = torchrun(["-m", "cnnlab", "train", "mnist-fast", *overrides, "--out", str(run), "--json"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout)  # rank 0 alone prints: exactly one JSON object
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert not list(tmp_path.glob(".cnnlab-new-*"))
    summary = json.loads((run / "summary.json").read_text())
    assert summary == printed
    assert (summary["world_size"], summary["dist_backend"]) == (2, "gloo")
    assert (single["world_size"], single["dist_backend"]) == (1, None)
    assert summary["test_accuracy"] >= 0.98
    assert abs(summary["test_accuracy"] - single["test_accuracy"]) < 0.01
    # the ranks' final test used the run's TTA: re-scoring final.pt in one process gives the same loss
    from cnnlab.report.evaluation import evaluate_run

    with_tta, without = (evaluate_run(run, tta=mode, top=1) for mode in ("translate", "none"))
    assert summary["test_loss"] == pytest.approx(with_tta["test_loss"], rel=1e-5)
    assert summary["test_loss"] != pytest.approx(without["test_loss"], rel=1e-5)
    # metrics reduced over ranks: every image of the epoch counted once, the steps of one process
    assert summary["train_images"] == single["train_images"] == 30000 // 128 * 128
    assert summary["steps"] == single["steps"] and summary["batch_size"] == 128
    (two_epoch,), (one_epoch,) = epoch_lines(run), epoch_lines(tmp_path / "one")
    assert two_epoch["train_accuracy"] == pytest.approx(one_epoch["train_accuracy"], abs=0.02)
    assert proc.stderr.count("epoch 1/1") == 1  # one progress line: rank 0's


def test_ranks_hold_identical_weights_and_a_killed_run_resumes_exactly(tmp_path, mnist_root):
    """An uninterrupted 2-rank run vs one whose rank 1 is killed in epoch 2 and then resumed."""
    overrides = [*FAST, "data.limit_train=3000", "train.epochs=2", "data.augment.translate=0.1",
                 "model.dropout=0.2"]  # per-rank random draws, which last.pt must restore on each rank
    ref, hashes = tmp_path / "ref", tmp_path / "hashes"
    hashes.mkdir()
    proc = torchrun([str(WORKER), str(ref), str(hashes), *overrides])
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (hashes / "rank0.txt").read_text(), (hashes / "rank1.txt").read_text()
    assert rank0 == rank1  # weights and (averaged) batch-norm statistics agree on both ranks

    run, died = tmp_path / "run", tmp_path / "died"
    died.mkdir()
    proc = torchrun([str(WORKER), "--die-rank", "1", str(run), str(died), *overrides])
    assert proc.returncode != 0  # torchrun ends rank 0 when rank 1 dies: no rank waits forever
    assert not (run / "summary.json").exists() and not list(died.iterdir())
    assert [e["epoch"] for e in epoch_lines(run)] == [1]
    proc = torchrun(["-m", "cnnlab", "train", "--resume", str(run)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming" in proc.stderr and proc.stderr.count("resuming") == 1
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["epochs"], summary["world_size"]) == ("completed", 2, 2)
    assert [e["epoch"] for e in epoch_lines(run)] == [1, 2]
    assert epoch_lines(run) == [{**e, "seconds": a["seconds"]} for e, a in zip(epoch_lines(ref), epoch_lines(run))]
    final = torch.load(run / "final.pt", weights_only=True)["model"]
    assert state_hash(final) + "\n" == rank0  # exact: the resumed run ends with the uninterrupted weights


def test_global_batch_not_divisible_is_one_line(tmp_path, mnist_root):
    proc = torchrun(["-m", "cnnlab", "train", "mnist-fast", *FAST, "data.batch_size=127",
                     "--out", str(tmp_path / "run")])
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("cnnlab: error:")]
    assert errors == ["cnnlab: error: data.batch_size=127 (the global batch) is not divisible by "
                      "the 2 ranks; set data.batch_size to a multiple of 2, e.g. 126 or 128; "
                      "torchrun's own report of the stopped processes follows"]  # rank 0 alone prints
    assert not (tmp_path / "run").exists()
