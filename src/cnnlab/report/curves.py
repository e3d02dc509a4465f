"""``curves.png``: loss, accuracy, learning rate and gradient norm against steps."""

from __future__ import annotations

import json
from pathlib import Path

from cnnlab.fileio import atomic_path


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """(step records, epoch records) from a ``metrics.jsonl``; a missing file has none.

    A line that is not a JSON object (a crash mid-write) is skipped.
    """
    steps, epochs = [], []
    path = Path(path)
    if not path.is_file():
        return steps, epochs
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict):
            (steps if record.get("type") == "step" else epochs).append(record)
    return steps, epochs


def plot_curves(metrics_path: Path, out_path: Path, scores: tuple[str, dict[str, str]] | None = None) -> Path | None:
    """Draw the four training curves of a run into ``out_path`` (PNG, written atomically).

    Returns None, writing nothing, when no step or epoch was logged yet.
    """
    steps, epochs = read_metrics(metrics_path)
    if not steps and not epochs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    (ax_loss, ax_acc), (ax_lr, ax_gn) = axes
    s = [r["step"] for r in steps]
    e = [r["step"] for r in epochs]
    ax_loss.plot(s, [r["loss"] for r in steps], lw=0.8, alpha=0.6, label="train (batch)")
    ax_loss.plot(e, [r["train_loss"] for r in epochs], "o-", label="train (epoch)")
    if any(r.get("val_loss") is not None for r in epochs):
        ax_loss.plot(e, [r["val_loss"] for r in epochs], "s-", label="validation")
    ax_loss.set(title="loss (train: the objective, label smoothing included)", xlabel="step", yscale="log")
    title, series = scores if scores is not None else score_series(epochs)
    for (key, label), marker in zip(series.items(), "os^v"):
        if any(r.get(key) is not None for r in epochs):
            ax_acc.plot(e, [r.get(key) for r in epochs], f"{marker}-", label=label)
    ax_acc.set(title=title, xlabel="step")
    ax_lr.plot(s, [r["lr"] for r in steps])
    ax_lr.set(title="learning rate", xlabel="step")
    gn = [(r["step"], r["grad_norm"]) for r in steps if r.get("grad_norm") is not None]
    if gn:
        ax_gn.plot(*zip(*gn))
    ax_gn.set(title="gradient norm (before clipping)", xlabel="step")
    for ax in (ax_loss, ax_acc):
        ax.legend()
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return out_path


def score_series(epochs: list[dict]) -> tuple[str, dict[str, str]]:
    """What the second panel plots when the task does not say: accuracy, else every other validation score.

    The task of a run names its own (``Task.curve_scores``: detection plots mAP@0.5 and mAP@[.5:.95]).
    """
    if any(r.get("train_accuracy") is not None for r in epochs):
        return "accuracy", {"train_accuracy": "train", "val_accuracy": "validation"}
    keys = sorted({k for r in epochs for k, v in r.items() if k.startswith("val_") and k != "val_loss"
                   and isinstance(v, (int, float))})
    return "validation scores", {k: k for k in keys}
