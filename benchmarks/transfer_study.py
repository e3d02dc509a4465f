"""The transfer study: does a backbone pretrained on Imagenette help CIFAR-10 with little data?

No ImageNet weights can be had on this project's machines, so cnnlab pretrains its own backbone:
the ``folder-convnet`` recipe (4 conv blocks, batch norm, global average pool; 391 k parameters)
on Imagenette-160 at 32x32. It is then transferred to ``cifar10-jpeg`` with 10, 100 and 1,000
labelled images per class, four ways, every cell one ``cnnlab train`` from the CLI:

* ``probe``      linear probe on cached features (``cnnlab features`` once, ``model.features_from``)
* ``last-k``     fine-tune the last feature stage + the head (``model.freeze_k=1``)
* ``full-ld``    fine-tune everything, layer decay 0.5 (``optim.layer_decay=0.5``)
* ``scratch``    the same network and recipe from random weights

    python benchmarks/transfer_study.py --pretrain runs/pretrain-imagenette32 --work runs/study

Writes ``benchmarks/results/transfer-study-*.json`` and ``benchmarks/transfer_study.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = ("probe", "last-k", "full-ld", "scratch")


def cli(*args: str) -> dict:
    """Run ``cnnlab ARGS --json`` and return its JSON (stdout), failing loudly."""
    cmd = [sys.executable, "-m", "cnnlab.cli", *args, "--json"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout)
    out["wall_seconds"] = round(time.perf_counter() - t0, 2)
    return out


def budget(per_class: int) -> tuple[int, int]:
    """(batch size, epochs): about 300+ optimizer steps for the smallest set, 10 epochs for the largest."""
    return {10: (32, 100), 100: (64, 30), 1000: (64, 10)}[per_class]


def cell(method: str, per_class: int, seed: int, pretrain: Path, feats: Path, work: Path) -> dict:
    batch, epochs = budget(per_class)
    common = [f"data.limit_train={per_class * 10}", "data.val=none", f"data.batch_size={batch}",
              f"train.seed={seed}", "train.threads=1", "train.plots=false", "train.early_stopping.patience=null"]
    out = work / f"{method}-{per_class}-s{seed}"
    if method == "probe":
        args = ["train", "cifar10-baseline", f"model.features_from={feats}", f"train.epochs={epochs * 2}",
                "optim.name=adamw", "optim.lr=0.01", "optim.weight_decay=1e-4", "schedule.name=cosine"]
    else:
        args = ["train", str(pretrain / "config.yaml"), "data.name=cifar10-jpeg", "data.image_size=32",
                f"train.epochs={epochs}"]
        if method == "last-k":
            args += [f"model.weights={pretrain}", "model.freeze_k=1", "optim.lr=1e-3"]
        elif method == "full-ld":
            args += [f"model.weights={pretrain}", "optim.layer_decay=0.5", "optim.lr=1e-3"]
        else:
            args += ["optim.lr=3e-3"]
    summary = cli(*args, *common, "--out", str(out), "--overwrite")
    return {"method": method, "per_class": per_class, "seed": seed, "test_accuracy": summary["test_accuracy"],
            "train_seconds": summary["train_seconds"], "wall_seconds": summary["wall_seconds"],
            "epochs": summary["epochs"], "steps": summary["steps"]}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        xs, ys, es = [], [], []
        for n in sorted({r["per_class"] for r in rows}):
            accs = [r["test_accuracy"] for r in rows if r["method"] == method and r["per_class"] == n]
            if accs:
                xs.append(n)
                ys.append(statistics.mean(accs))
                es.append(statistics.pstdev(accs) if len(accs) > 1 else 0.0)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("labelled CIFAR-10 images per class")
    ax.set_ylabel("test accuracy (10,000 images)")
    ax.set_title("Imagenette-pretrained ConvNet -> CIFAR-10 (JPEG), 32x32")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pretrain", type=Path, required=True, help="the pretraining run (trained if missing)")
    ap.add_argument("--work", type=Path, default=Path("runs/transfer-study"))
    ap.add_argument("--per-class", default="10,100,1000")
    ap.add_argument("--seeds", default="0,1,2", help="seeds for 10 and 100 per class (1000 uses the first)")
    ap.add_argument("--out-dir", type=Path, default=HERE / "results")
    ap.add_argument("--plot", type=Path, default=HERE / "transfer_study.png")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if not (a.pretrain / "final.pt").is_file():
        print(f"pretraining {a.pretrain} ...", file=sys.stderr, flush=True)
        cli("train", "folder-convnet", "data.name=imagenette-160", "data.image_size=32", "train.epochs=15",
            "train.threads=1", "--out", str(a.pretrain))
    pre = json.loads((a.pretrain / "summary.json").read_text())
    feats = a.work / "features-cifar10"
    t0 = time.perf_counter()
    cli("features", str(a.pretrain), "--data", "cifar10-baseline", "--out", str(feats))
    feature_seconds = time.perf_counter() - t0
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    for n in [int(v) for v in a.per_class.split(",")]:
        for seed in (seeds if n < 1000 else seeds[:1]):
            for method in METHODS:
                row = cell(method, n, seed, a.pretrain, feats, a.work)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    payload = {"pretrain": {"run": str(a.pretrain), "test_accuracy": pre.get("test_accuracy"),
                            "train_seconds": pre.get("train_seconds"), "dataset": pre.get("dataset")},
               "feature_cache_seconds": round(feature_seconds, 1), "rows": rows,
               "machine": {"cpus": os.cpu_count(), "platform": sys.platform}}
    a.out_dir.mkdir(parents=True, exist_ok=True)
    path = a.out_dir / f"transfer-study-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    plot(rows, a.plot)
    print(f"| per class | " + " | ".join(METHODS) + " |")
    for n in sorted({r["per_class"] for r in rows}):
        cells = []
        for m in METHODS:
            got = [r for r in rows if r["method"] == m and r["per_class"] == n]
            acc = statistics.mean(r["test_accuracy"] for r in got)
            sec = statistics.mean(r["train_seconds"] for r in got)
            cells.append(f"{acc:.3f} ({sec:.1f} s)")
        print(f"| {n} | " + " | ".join(cells) + " |")
    print(f"wrote {path} and {a.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
