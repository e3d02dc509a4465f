"""Training seconds to a target test accuracy, against a baseline (``cnnlab bench train``).

Both presets train in the same process, one seed after another, so the ratio
of their times holds even on a noisy machine. Test accuracy is measured at
the end of every epoch; the time to target counts the seconds spent in
training steps only (not the probe itself), and a run stops once it reaches
the target. The benchmark also measures the input pipeline (index, convert,
augment, normalise) and reports how many times faster it is than training.

    cnnlab bench train mnist-fast --baseline mnist-classic --target 0.99 --seeds 3
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cnnlab.bench import Progress, to_stderr
from cnnlab.bench.results_io import write_result
from cnnlab.config import load_config
from cnnlab.errors import CnnlabError
from cnnlab.train.callbacks import Callback

# why the cnnlab imports inside functions: `cnnlab --help` imports this module for its description, and they load torch or numpy


# A heavier augmentation stack, measured as well so the number does not depend on a preset's choice.
STANDARD_AUGMENT = ["data.augment.crop_padding=2", "data.augment.rotate=10", "data.augment.scale=0.1",
                    "data.augment.noise_std=0.05", "data.augment.erase_prob=0.5"]


class TestAccuracyProbe(Callback):
    """At each epoch end: test accuracy and cumulative step seconds; stop at the target.

    The test batches are built at the start of training, on the training data's device
    and with its normalisation, from the run's own loaded dataset.
    """

    def __init__(self, data, batch_size: int, target: float) -> None:
        self.data, self.batch_size, self.target = data, batch_size, target
        self.test_batches = None
        self.points: list[tuple[float, float]] = []  # (train seconds so far, test accuracy)
        self.seconds_to_target: float | None = None

    def on_train_start(self, trainer) -> None:
        from cnnlab.data.loader import DeviceBatches

        source = trainer.train_batches
        device = source.images.device
        stats = [None if t is None else t.flatten().tolist() for t in (source.mean, source.std)]
        self.test_batches = DeviceBatches(self.data.test_x.to(device), self.data.test_y.to(device), self.batch_size,
                                          mean=stats[0], std=stats[1], channels_last=source.channels_last)

    def on_epoch_end(self, trainer, metrics) -> None:
        from cnnlab.train.evaluate import evaluate

        # The preset's own test: with its test-time augmentation (train.tta), if any.
        accuracy = evaluate(trainer.model, self.test_batches, trainer.cfg.train.precision,
                            tta=trainer.cfg.train.tta).accuracy
        self.points.append((trainer.train_seconds, accuracy))
        if accuracy >= self.target and self.seconds_to_target is None:
            self.seconds_to_target = trainer.train_seconds
            trainer.stop_reason = "target_reached"


def measure_pipeline(batches, epochs: int = 1) -> float:
    """Images per second of the input pipeline alone (index, convert, augment, normalise)."""
    start, count = time.perf_counter(), 0
    for epoch in range(epochs):
        for x, _ in batches.epoch(epoch):
            count += len(x)
    return count / max(time.perf_counter() - start, 1e-9)


def bench_preset(name: str, overrides: list[str], seeds: int, target: float, data_dir: str | None,
                 cache: dict, progress: Progress = to_stderr) -> dict[str, Any]:
    """Train ``name`` once per seed; return per-seed times to target and pipeline throughput.

    ``cache`` maps a dataset's identity to the loaded data, so a second preset on the same data
    does not load it again; ``progress`` receives one line per trained seed.
    """
    import torch

    from cnnlab.data.datasets import load_dataset
    from cnnlab.data.pipeline import make_splits
    from cnnlab.runs import resolve_device
    from cnnlab.train.run import train

    runs = []
    for seed in range(seeds):
        cfg = load_config(name, overrides + [f"train.seed={seed}", "train.plots=false"])
        if data_dir:
            cfg.data.data_dir = data_dir
        key = (cfg.data.name, cfg.data.data_dir, cfg.data.root)
        if key not in cache:
            cache[key] = load_dataset(cfg.data)
        data = cache[key]
        probe = TestAccuracyProbe(data, cfg.data.eval_batch_size, target)
        with tempfile.TemporaryDirectory() as tmp:
            summary = train(cfg, Path(tmp) / "run", data=data, callbacks=[probe], quiet=True)
        runs.append({"seed": seed, "seconds_to_target": probe.seconds_to_target, "curve": probe.points,
                     "final_test_accuracy": probe.points[-1][1] if probe.points else None,
                     "train_images_per_second": summary["images_per_second"], "epochs": summary["epochs"]})
        reached = f"{probe.seconds_to_target:.1f}s" if probe.seconds_to_target is not None else "not reached"
        progress(f"{name} seed {seed}: {reached} to {target:.3f} "
               f"(test accuracy by epoch: {', '.join(f'{a:.4f}' for _, a in probe.points)})")
    if not runs:
        raise CnnlabError("--seeds must be at least 1")
    cfg = load_config(name, overrides)
    splits = make_splits(data, cfg.data, resolve_device(cfg.train.device), 0, cfg.train.channels_last)
    preset_pipeline = measure_pipeline(splits.train)
    heavy = load_config(name, overrides + STANDARD_AUGMENT)
    heavy_splits = make_splits(data, heavy.data, resolve_device(cfg.train.device), 0, cfg.train.channels_last)
    heavy_pipeline = measure_pipeline(heavy_splits.train)
    times = [r["seconds_to_target"] for r in runs]
    train_rate = statistics.median(r["train_images_per_second"] for r in runs)
    return {
        "preset": name, "runs": runs,
        "median_seconds_to_target": statistics.median(times) if all(t is not None for t in times) else None,
        "reached": sum(t is not None for t in times),
        "train_images_per_second": train_rate,
        "pipeline_images_per_second": preset_pipeline,
        "standard_augment_images_per_second": heavy_pipeline,
        "pipeline_over_training": preset_pipeline / train_rate,
        "standard_augment_over_training": heavy_pipeline / train_rate,
        "torch_threads": torch.get_num_threads(),
    }


def compare_presets(preset: str, baseline: str, overrides: list[str], seeds: int = 3, target: float = 0.99,
                    data_dir: str | None = None, out_dir: str | os.PathLike = "benchmarks/results",
                    progress: Progress = to_stderr) -> dict[str, Any]:
    """Benchmark ``preset`` against ``baseline`` and write the result JSON under ``out_dir``.

    Returns the payload written (``results`` holds one :func:`bench_preset` row per preset,
    ``speedup_vs_baseline`` the ratio of their median seconds to target, None when either
    preset missed the target) plus ``json_path``.
    """
    cache: dict = {}
    rows = [bench_preset(name, list(overrides), seeds, target, data_dir, cache, progress)
            for name in (preset, baseline)]
    fast, base = rows
    speedup = (base["median_seconds_to_target"] / fast["median_seconds_to_target"]
               if fast["median_seconds_to_target"] and base["median_seconds_to_target"] else None)
    payload = {"target": target, "seeds": seeds, "results": rows, "speedup_vs_baseline": speedup}
    path = write_result("train", payload, out_dir)
    payload["json_path"] = str(path)
    return payload


def format_table(payload: dict[str, Any]) -> list[str]:
    """The lines of the text report of a :func:`compare_presets` payload."""
    target, seeds, rows = payload["target"], payload["seeds"], payload["results"]
    header = f"{'preset':<18}{'reached':>9}{'median s to ' + format(target, '.3f'):>20}" \
             f"{'train img/s':>13}{'pipeline img/s':>16}{'x train':>9}{'std-aug img/s':>15}{'x train':>9}"
    lines = [header, "-" * len(header)]
    for r in rows:
        t = r["median_seconds_to_target"]
        lines.append(f"{r['preset']:<18}{r['reached']:>6}/{seeds:<2}{(f'{t:.1f}' if t else '-'):>20}"
                     f"{r['train_images_per_second']:>13.0f}{r['pipeline_images_per_second']:>16.0f}"
                     f"{r['pipeline_over_training']:>9.1f}{r['standard_augment_images_per_second']:>15.0f}"
                     f"{r['standard_augment_over_training']:>9.1f}")
    if payload["speedup_vs_baseline"]:
        fast, base = rows
        lines.append(f"{fast['preset']} reaches {target} {payload['speedup_vs_baseline']:.1f}x faster "
                     f"than {base['preset']}")
    return lines
