"""Time to a target test accuracy of finished CIFAR-10 runs, side by side, with the CPU's arithmetic bound.

    cnnlab train cifar10-cpu train.threads=1 --out runs/cifar10-cpu
    cnnlab train cifar10-resnet9 train.threads=1 --out runs/cifar10-resnet9
    PYTHONPATH=src python benchmarks/cifar_time_to_target.py runs/cifar10-cpu runs/cifar10-resnet9 --target 0.9

Both presets validate on the test split (``data.val: test``), so every epoch's ``val_accuracy`` in
``metrics.jsonl`` is the test accuracy of the live weights (no EMA, no test-time augmentation). A
run's time to target is the training seconds (epoch time without validation) summed up to the first
epoch whose test accuracy reaches the target; if only the final test (``summary.json``: EMA weights
and TTA where the preset has them) reaches it, the whole run's training seconds count. Each run is
measured the same way, so their times compare directly when they ran on the same machine under the
same load (say so in ``--note``).

The bound: training one image costs about ``6 x MACs`` FLOPs (forward 2, backward 4), so at the
best float32 rate measured here with the runs' thread count (a large matmul or 3x3 convolution,
see cifar_cpu_rates.peak_gflops), no implementation of that network could process its images
faster; ``bound_seconds_to_target`` is the images the run needed at that rate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cifar_cpu_rates import peak_gflops  # noqa: E402  (a sibling benchmark script)

from cnnlab.bench.results_io import write_result  # noqa: E402


def run_row(run_dir: Path, target: float) -> dict:
    """One run's curve, time to ``target`` and final test accuracy, from its run directory."""
    from cnnlab.config import load_config
    from cnnlab.models import create_model
    from cnnlab.profile.profiler import profile_model

    summary = json.loads((run_dir / "summary.json").read_text())
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
              if line.strip() and json.loads(line).get("type") == "epoch"]
    cfg = load_config(str(run_dir / "config.yaml"))
    options = {"image_size": summary["input_size"][1], **cfg.model.options}
    model = create_model(cfg.model.name, num_classes=summary["num_classes"], in_channels=summary["input_size"][0],
                         **options)
    macs = profile_model(model, tuple(summary["input_size"])).macs
    curve, seconds, reached_at = [], 0.0, None
    per_epoch_images = summary["train_images"] / max(summary["epochs"], 1)
    for e in epochs:
        seconds += e["seconds"]
        curve.append({"epoch": e["epoch"], "train_seconds_so_far": round(seconds, 1),
                      "test_accuracy_live_weights": e["val_accuracy"]})
        if reached_at is None and e["val_accuracy"] is not None and e["val_accuracy"] >= target:
            reached_at = {"epoch": e["epoch"], "seconds": seconds, "how": "live weights, no TTA",
                          "images": per_epoch_images * e["epoch"]}
    final = summary.get("test_accuracy")
    if reached_at is None and final is not None and final >= target:
        reached_at = {"epoch": summary["epochs"], "seconds": seconds,
                      "how": f"final test ({summary.get('tested_weights')} weights, tta={summary['effective']['tta']})",
                      "images": summary["train_images"]}
    return {"run_dir": str(run_dir), "preset": summary["name"], "model": cfg.model.name,
            "model_options": cfg.model.options, "macs_per_image": macs, "params": summary["params"],
            "epochs": summary["epochs"], "threads": cfg.train.threads, "images_per_second": summary["images_per_second"],
            "train_seconds": summary["train_seconds"], "final_test_accuracy": final,
            "tested_weights": summary.get("tested_weights"), "tta": summary["effective"]["tta"],
            "reached": reached_at is not None, "seconds_to_target": reached_at and reached_at["seconds"],
            "reached_how": reached_at and reached_at["how"], "images_to_target": reached_at and reached_at["images"],
            "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished run directories")
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--note", default="", help="how the runs were made (machine load, what ran beside them)")
    parser.add_argument("--out-dir", default="benchmarks/results")
    args = parser.parse_args()
    rows = [run_row(r, args.target) for r in args.runs]
    threads = sorted({r["threads"] or 1 for r in rows})
    peaks = {t: peak_gflops(t) for t in threads}
    gflops = {t: p["ceiling"] for t, p in peaks.items()}
    print(f"{'preset':<26}{'M MACs':>8}{'img/s':>8}{'bound img/s':>12}{'final test':>11}"
          f"{'s to ' + format(args.target, '.0%'):>10}{'bound s':>9}")
    for r in rows:
        rate = gflops[r["threads"] or 1] * 1e9 / (6 * r["macs_per_image"])
        r["peak_gflops"] = peaks[r["threads"] or 1]
        r["bound_images_per_second"] = rate
        r["bound_seconds_to_target"] = r["images_to_target"] / rate if r["reached"] else None
        reached = f"{r['seconds_to_target']:.0f}" if r["reached"] else "-"
        bound = f"{r['bound_seconds_to_target']:.0f}" if r["reached"] else "-"
        print(f"{r['preset']:<26}{r['macs_per_image'] / 1e6:>8.1f}{r['images_per_second']:>8.1f}{rate:>12.1f}"
              f"{r['final_test_accuracy']:>11.4f}{reached:>10}{bound:>9}")
    path = write_result("cifar-time-to-target", {"target": args.target, "note": args.note, "runs": rows},
                        args.out_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
