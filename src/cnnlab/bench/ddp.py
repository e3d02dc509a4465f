"""Data-parallel ranks against threads on one machine (``cnnlab bench ddp``).

The same preset trains in three setups in one benchmark run, one after the
other, each in fresh processes: N ranks of ``threads`` threads each under
torchrun (DistributedDataParallel over gloo on the CPU, NCCL on GPUs), one
plain process with N x ``threads`` threads, and one plain process with
``threads`` threads (what a single rank does alone: the base of both
speed-ups); same global batch, same epochs. The numbers compared are the training images per second of the
training steps (``summary.json``: start-up, data loading and testing are
excluded) and the test accuracy each setup reached. ``--repeats`` reverses
the order of the setups every other time.

    cnnlab bench ddp mnist-classic --ranks 2 --threads 1
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cnnlab
from cnnlab.bench import Progress, to_stderr
from cnnlab.bench.results_io import write_result
from cnnlab.errors import CnnlabError

# Training for one epoch measures speed; the preset's own 15 epochs would only repeat it.
DEFAULT_OVERRIDES = ["train.epochs=1", "train.plots=false"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(threads: int) -> dict[str, str]:
    src = str(Path(cnnlab.__file__).resolve().parents[1])  # the children import this very cnnlab
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": str(threads)}


def label(ranks: int, threads: int) -> str:
    """``label(2, 1)`` -> ``'2 ranks x 1 thread'``."""
    return f"{ranks} rank{'s' if ranks > 1 else ''} x {threads} thread{'s' if threads > 1 else ''}"


def run_setup(preset: str, overrides: list[str], ranks: int, threads: int, work: Path,
              data_dir: str | None = None) -> dict[str, Any]:
    """Train ``preset`` with ``ranks`` processes of ``threads`` threads; its summary's speed and accuracy."""
    out = work / f"{ranks}x{threads}-{time.monotonic_ns()}"
    args = ["-m", "cnnlab", "train", preset, *overrides, f"train.threads={threads}", "--out", str(out), "--json",
            "--quiet"] + (["--data-dir", data_dir] if data_dir else [])
    if ranks > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={ranks}",
               f"--master_port={_free_port()}", *args]
    else:
        cmd = [sys.executable, *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=_env(threads), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("cnnlab: error:")]
        detail = errors[0] if errors else " ".join(proc.stderr.split()[-30:])
        raise CnnlabError(f"the {ranks} rank(s) x {threads} thread(s) run failed (exit {proc.returncode}): {detail}")
    summary = json.loads(proc.stdout)
    return {"ranks": ranks, "threads_per_rank": threads, "setup": label(ranks, threads), "images_per_second": summary["images_per_second"],
            "train_seconds": summary["train_seconds"], "train_images": summary["train_images"],
            "test_accuracy": summary["test_accuracy"], "wall_seconds": round(wall, 1),
            "world_size": summary.get("world_size", 1), "dist_backend": summary.get("dist_backend")}


def compare_ranks_threads(preset: str = "mnist-classic", overrides: list[str] | None = None, *, ranks: int = 2,
                          threads: int = 1, repeats: int = 1, data_dir: str | None = None,
                          out_dir: str | os.PathLike = "benchmarks/results",
                          progress: Progress = to_stderr) -> dict[str, Any]:
    """``ranks`` x ``threads`` (DDP) against 1 x ``ranks * threads`` and 1 x ``threads`` (plain processes).

    Returns the payload written to ``benchmarks/results/ddp-*.json`` (plus ``json_path``):
    every run, the median images/s of each setup and ``ddp_over_threads`` (their ratio).
    """
    if ranks < 2 or threads < 1 or repeats < 1:
        raise CnnlabError(f"--ranks must be >= 2 and --threads, --repeats >= 1; got {ranks}, {threads}, {repeats}")
    overrides = [*DEFAULT_OVERRIDES, *(overrides or [])]
    setups = [(ranks, threads), (1, ranks * threads), (1, threads)]  # the last: what one rank alone does
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-ddp-") as tmp:
        for repeat in range(repeats):
            for r, t in setups if repeat % 2 == 0 else setups[::-1]:
                progress(f"{preset}: {r} rank(s) x {t} thread(s), run {repeat + 1}/{repeats}")
                result = run_setup(preset, overrides, r, t, Path(tmp), data_dir)
                progress(f"  {result['images_per_second']:.0f} images/s, test accuracy {result['test_accuracy']:.4f}")
                runs.append(result)
    medians = {}
    for r, t in setups:
        mine = [x for x in runs if x["setup"] == label(r, t)]
        medians[label(r, t)] = {key: statistics.median(x[key] for x in mine)
                                for key in ("images_per_second", "train_seconds", "test_accuracy")}
    ddp, plain, alone = (medians[label(*setup)] for setup in setups)
    payload = {"preset": preset, "overrides": overrides, "ranks": ranks, "threads_per_rank": threads,
               "repeats": repeats, "runs": runs, "medians": medians,
               "ddp_over_threads": round(ddp["images_per_second"] / plain["images_per_second"], 3),
               "ddp_speedup": round(ddp["images_per_second"] / alone["images_per_second"], 3),
               "threads_speedup": round(plain["images_per_second"] / alone["images_per_second"], 3)}
    path = write_result("ddp", payload, out_dir)
    payload["json_path"] = str(path)
    return payload


def format_table(payload: dict[str, Any]) -> list[str]:
    """The lines of the text report of a :func:`compare_ranks_threads` payload."""
    header = f"{'setup':<22}{'images/s':>10}{'train s':>9}{'test acc':>10}"
    lines = [f"{payload['preset']} {' '.join(payload['overrides'])} (median of {payload['repeats']})",
             header, "-" * len(header)]
    for setup, m in payload["medians"].items():
        lines.append(f"{setup:<22}{m['images_per_second']:>10.0f}{m['train_seconds']:>9.1f}{m['test_accuracy']:>10.4f}")
    n, t = payload["ranks"], payload["threads_per_rank"]
    lines.append(f"{label(n, t)}: {payload['ddp_over_threads']:.2f}x the images/s of {label(1, n * t)}; "
                 f"over {label(1, t)}: {payload['ddp_speedup']:.2f}x with ranks, "
                 f"{payload['threads_speedup']:.2f}x with threads")
    return lines
