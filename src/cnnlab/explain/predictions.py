"""A grid of test images with their true and predicted classes; mistakes in red."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.explain.figures import save
from cnnlab.report.plots import pyplot, show_image


def predictions_figure(images_uint8: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, classes: list[str],
                       rows: int, cols: int, path: Path, indices: list[int] | None = None) -> dict:
    """``rows`` x ``cols`` images, each titled ``pred (p) / true``; a red title and frame marks a mistake."""
    plt = pyplot()
    n = min(len(images_uint8), rows * cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.5 + 0.2, rows * 1.95 + 0.5), squeeze=False)
    conf, pred = probs.max(1)
    wrong = 0
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.axis("off")
            continue
        show_image(ax, images_uint8[k])
        mistake = int(pred[k]) != int(labels[k])
        wrong += mistake
        colour = "red" if mistake else "black"
        ax.set_title(f"{classes[int(pred[k])][:12]} {float(conf[k]):.2f}\ntrue {classes[int(labels[k])][:12]}",
                     fontsize=7, color=colour)
        for spine in ax.spines.values():
            spine.set_edgecolor("red" if mistake else "none")
            spine.set_linewidth(2.5)
    fig.suptitle(f"predicted (probability) / true; {wrong} mistake(s) in red", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.96))  # room for the title
    save(fig, path)
    return {"figure": str(path), "images": n, "mistakes": wrong,
            "shown": [{"index": indices[k] if indices else k, "true": classes[int(labels[k])],
                       "predicted": classes[int(pred[k])], "probability": round(float(conf[k]), 4)}
                      for k in range(n)]}
