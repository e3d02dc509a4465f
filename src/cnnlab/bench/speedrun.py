"""Mean and spread of a speed-run preset over repeated runs (``cnnlab bench speedrun``).

Each run is one full training of the preset with its own seed (0, 1, ...), on one copy of the
dataset loaded once before the first run, so no run pays for reading files. Reported per run and
as mean ± sample standard deviation: the test accuracy (with the preset's test-time
augmentation), the seconds inside training steps (``train_seconds``: no data loading, no
compilation, no evaluation) and, when the preset compiles, the compile seconds apart. The JSON
names the device (the GPU model, or the CPU model and thread count).

    cnnlab bench speedrun mnist-speedrun --runs 10
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from cnnlab.bench import Progress, to_stderr
from cnnlab.bench.results_io import write_result
from cnnlab.config import load_config
from cnnlab.errors import CnnlabError

# why the cnnlab imports inside functions: `cnnlab --help` imports this module for its description, and they load torch or numpy

MAX_RUNS = 1000


def device_name(device: str, threads: int | None = None) -> str:
    """``"NVIDIA H100 80GB HBM3"`` for a CUDA device; the CPU model and the thread count otherwise
    (``threads``: the runs' ``train.threads``; default torch's current count)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import platform

    threads = threads or torch.get_num_threads()
    return f"{model or platform.processor() or platform.machine()} ({threads} thread{'s' if threads > 1 else ''})"


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value; None for none)."""
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def bench_speedrun(name: str, runs: int, overrides: list[str] = (), data_dir: str | None = None,
                   out_dir: str | os.PathLike = "benchmarks/results", progress: Progress = to_stderr) -> dict[str, Any]:
    """Train ``name`` ``runs`` times (seeds 0..runs-1) and write the result JSON under ``out_dir``."""
    from cnnlab.data.datasets import load_dataset
    from cnnlab.train.run import train

    if not 1 <= runs <= MAX_RUNS:
        raise CnnlabError(f"--runs must be in [1, {MAX_RUNS}], got {runs}")
    base = load_config(name, list(overrides))  # a bad preset or override fails before any data is read
    if data_dir:
        base.data.data_dir = data_dir
    data = load_dataset(base.data)
    rows = []
    for seed in range(runs):
        cfg = load_config(name, list(overrides) + [f"train.seed={seed}", "train.plots=false"])
        if data_dir:
            cfg.data.data_dir = data_dir
        with tempfile.TemporaryDirectory() as tmp:
            s = train(cfg, Path(tmp) / "run", data=data, quiet=True)
        rows.append({"seed": seed, "test_accuracy": s["test_accuracy"], "train_seconds": s["train_seconds"],
                     "compile_seconds": s.get("compile_seconds"), "epochs": s["epochs"],
                     "images_per_second": s["images_per_second"], "status": s["status"],
                     "device": s["device"], "effective": s.get("effective")})
        acc = "-" if s["test_accuracy"] is None else f"{s['test_accuracy']:.4f}"
        progress(f"{name} run {seed + 1}/{runs}: test accuracy {acc} in {s['train_seconds']:.2f} s of training"
                 + (f" (+{s['compile_seconds']:.1f} s compile)" if s.get("compile_seconds") else ""))
    accs = [r["test_accuracy"] for r in rows if r["test_accuracy"] is not None]
    secs = [r["train_seconds"] for r in rows]
    comp = [r["compile_seconds"] for r in rows if r["compile_seconds"] is not None]
    acc_mean, acc_std = mean_std(accs)
    sec_mean, sec_std = mean_std(secs)
    comp_mean, comp_std = mean_std(comp)
    device = rows[0]["device"]
    payload = {
        "preset": name, "overrides": list(overrides), "runs": runs, "device": device,
        "device_name": device_name(device, base.train.threads), "dataset": base.data.name,
        "test_accuracy_mean": acc_mean, "test_accuracy_std": acc_std,
        "test_accuracy_min": min(accs) if accs else None,
        "train_seconds_mean": sec_mean, "train_seconds_std": sec_std,
        "compile_seconds_mean": comp_mean, "compile_seconds_std": comp_std,
        "per_run": rows,
    }
    payload["json_path"] = str(write_result(f"speedrun-{name}", payload, out_dir))
    return payload


def format_table(payload: dict[str, Any]) -> list[str]:
    """The text report of a :func:`bench_speedrun` payload."""
    p = payload
    acc = "-" if p["test_accuracy_mean"] is None else f"{p['test_accuracy_mean']:.4f} ± {p['test_accuracy_std']:.4f}"
    lines = [f"{p['preset']} on {p['device_name']} ({p['device']}), {p['runs']} runs",
             f"  test accuracy   {acc}  (min {p['test_accuracy_min']})",
             f"  train seconds   {p['train_seconds_mean']:.3f} ± {p['train_seconds_std']:.3f}"]
    if p["compile_seconds_mean"] is not None:
        lines.append(f"  compile seconds {p['compile_seconds_mean']:.2f} ± {p['compile_seconds_std']:.2f} "
                     "(not in train seconds)")
    return lines
