"""Compare ImageNet-pretrained networks: EfficientNet-Lite0/1/2 fine-tuned on Imagenette with one recipe.

Each network gets the ``imagenette-finetune`` preset at 160 px (its own is 224 now; the weights' own
preprocessing, a new 10-class head, model.freeze_k=5, layer decay 0.5, AdamW + one-cycle, 3
epochs), one thread each, one after another so that the seconds compare. The table adds the
networks trained without ImageNet: the best from-scratch ConvNet of the Imagenette sweep and the
Imagenette-pretrained ConvNet of the transfer study (their own runs, cited by file).

    python benchmarks/pretrained_compare.py --work runs/compare    # trains what --work lacks (~1 h)

Writes ``benchmarks/results/pretrained-compare-*.json`` and ``docs/images/manual/pretrained_compare.png``
(the transfer manual's plot).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transfer_study import cli  # noqa: E402  (a sibling benchmark script: `cnnlab ARGS --json` -> its JSON)

from cnnlab.bench.results_io import write_result  # noqa: E402
from cnnlab.fileio import atomic_path  # noqa: E402

HERE = Path(__file__).resolve().parent
DOCS_IMAGES = HERE.parent / "docs" / "images" / "manual"
NETWORKS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
# Measured elsewhere in the project, on the same 3,925 Imagenette validation photos (no ImageNet weights).
NOT_IMAGENET = [
    {"network": "ConvNet from scratch (best of sweep-imagenette-convnet, 64 px)", "test_accuracy": 0.805,
     "source": "docs/manual/tune.md (trial 9)"},
    {"network": "ConvNet pretrained on Imagenette (folder-convnet, 32 px, 15 epochs)", "test_accuracy": 0.7664,
     "train_seconds": 159.7, "parameters": 391_000, "source": "benchmarks/results/transfer-study-20261130-032353.json"},
]


def measure(network: str, work: Path) -> dict:
    run = work / network
    if not (run / "summary.json").is_file():
        cli("train", "imagenette-finetune", f"model.name={network}", "data.image_size=160", "train.threads=1",
            "--out", str(run))
    summary = json.loads((run / "summary.json").read_text())
    profile = cli("profile", str(run), "--no-timing", "--no-layers")
    return {"network": f"{network}.in1k fine-tuned", "run": str(run), "test_accuracy": summary["test_accuracy"],
            "train_seconds": summary["train_seconds"], "parameters": summary["params"],
            "macs_160px": profile["macs_per_image"], "epochs": summary["epochs"]}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    names = [r["network"].replace(" fine-tuned", "").replace("efficientnet_", "") for r in rows]
    accs = [r["test_accuracy"] for r in rows]
    colours = ["tab:blue" if "in1k" in n else "tab:grey" for n in names]
    ax.barh(range(len(rows)), accs, color=colours)
    for i, a in enumerate(accs):
        ax.text(a + 0.005, i, f"{a:.3f}", va="center", fontsize=8)
    ax.set_yticks(range(len(rows)), [n.split(" (")[0] for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0.5, 1.04)
    ax.set_xlabel("Imagenette test accuracy (3,925 photos)")
    ax.set_title("ImageNet weights (blue) vs none (grey), 2-core CPU", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("runs/compare"))
    ap.add_argument("--out-dir", type=Path, default=HERE / "results")
    ap.add_argument("--plot", type=Path, default=DOCS_IMAGES / "pretrained_compare.png")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    rows = [measure(n, a.work) for n in NETWORKS] + NOT_IMAGENET
    path = write_result("pretrained-compare", {"rows": rows}, a.out_dir)
    plot(rows, a.plot)
    print("| network | test accuracy | parameters | MACs at 160 px | training seconds |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        macs = f"{r['macs_160px'] / 1e6:.0f} M" if "macs_160px" in r else "-"
        sec = f"{r['train_seconds']:.0f}" if "train_seconds" in r else "-"
        params = f"{r['parameters']:,}" if "parameters" in r else "-"
        print(f"| {r['network']} | {r['test_accuracy']:.4f} | {params} | {macs} | {sec} |")
    print(f"wrote {path} and {a.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
