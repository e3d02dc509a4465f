"""Evaluation of a finished run: scores, a confusion matrix and the worst-classified images."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from cnnlab.data.datasets import load_dataset
from cnnlab.data.loader import DeviceBatches
from cnnlab.errors import CnnlabError, check_int_range
from cnnlab.fileio import atomic_path, write_json_atomic
from cnnlab.report.plots import image_grid_axes, pyplot, show_image
from cnnlab.rundir import lock_run_dir
from cnnlab.runs import load_run
from cnnlab.train.evaluate import evaluate
from cnnlab.transfer.adapt import adapt_images

MAX_TOP = 256  # images drawn in top_losses.png; a grid of more is unreadable (and costs memory)


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor, classes: int) -> torch.Tensor:
    """(classes, classes) counts: row = true class, column = predicted class.

    >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    return torch.bincount(labels * classes + preds, minlength=classes * classes).view(classes, classes)


def evaluate_run(run_dir, data_dir: str | None = None, weights: str | None = None, top: int = 16,
                 tta: str | None = None) -> dict:
    """Score a run's model on its test split and draw ``confusion.png`` and ``top_losses.png``.

    ``tta`` (none, flip, flip-translate) defaults to the run's ``train.tta``.

    The run directory is locked while its files are written, as a training holds it.
    """
    check_int_range("top", top, 1, MAX_TOP)
    run = load_run(run_dir, weights=weights)
    with lock_run_dir(run.run_dir, kind="train"):  # a training still writing here refuses us, in one line
        return _evaluate_loaded_run(run, data_dir, top, tta)


def _evaluate_loaded_run(run, data_dir: str | None, top: int, tta: str | None = None) -> dict:
    cfg = run.config
    if data_dir:
        cfg.data.data_dir = data_dir
    data = load_dataset(cfg.data)
    test_x = data.test_x
    if tuple(test_x.shape[1:]) != run.input_size and data.num_classes == run.num_classes:
        test_x = adapt_images(test_x, run.input_size)  # a run trained on adapted images (model.weights)
    if tuple(test_x.shape[1:]) != run.input_size or data.num_classes != run.num_classes:
        raise CnnlabError(f"the dataset now has images of {'x'.join(map(str, data.input_size))} and "
                          f"{data.num_classes} classes, but the run was trained on "
                          f"{'x'.join(map(str, run.input_size))} and {run.num_classes}")
    batches = DeviceBatches(test_x, data.test_y, cfg.data.eval_batch_size, mean=run.mean, std=run.std)
    tta = tta or cfg.train.tta
    result = evaluate(run.model, batches, keep_logits=True, tta=tta)
    logits, labels = result.logits, result.labels
    preds = logits.argmax(1)
    matrix = confusion_matrix(labels, preds, run.num_classes)
    per_class = (matrix.diag().float() / matrix.sum(1).clamp_min(1).float()).tolist()
    losses = F.cross_entropy(logits, labels, reduction="none")
    worst = losses.argsort(descending=True)[:top]
    out_dir = Path(run.run_dir)
    confusion_png = draw_confusion(matrix, run.classes, out_dir / "confusion.png")
    probs = logits.softmax(1)
    top_png = draw_top_losses(test_x[worst], labels[worst], preds[worst], probs[worst], losses[worst],
                              run.classes, out_dir / "top_losses.png")
    report = {
        "run_dir": str(run.run_dir), "weights": run.weights_file.name, "count": result.count,
        "test_accuracy": result.accuracy, "test_loss": result.loss, "tta": tta,
        "per_class_accuracy": dict(zip(run.classes, [round(a, 4) for a in per_class])),
        "confusion_matrix": matrix.tolist(),
        "top_losses": [{"index": int(i), "true": run.classes[int(labels[i])], "predicted": run.classes[int(preds[i])],
                        "loss": round(float(losses[i]), 4)} for i in worst],
        "confusion_png": str(confusion_png), "top_losses_png": str(top_png),
    }
    write_json_atomic(out_dir / "eval.json", report)
    return report


def draw_confusion(matrix: torch.Tensor, classes: list[str], path: Path) -> Path:
    """Row-normalised confusion matrix with the counts written in each cell."""
    plt = pyplot()
    n = len(classes)
    size = min(4 + 0.5 * n, 16)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    norm = matrix.float() / matrix.sum(1, keepdim=True).clamp_min(1)
    ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(n), classes, rotation=90)
        ax.set_yticks(range(n), classes)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (test)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return path


def draw_top_losses(images, labels, preds, probs, losses, classes, path: Path) -> Path:
    """The test images the model got most wrong: predicted / true, loss, probability of the truth."""
    plt, fig, axes = image_grid_axes(len(images))
    for ax, img, y, p, pr, loss in zip(axes, images, labels, preds, probs, losses):
        show_image(ax, img)
        ax.set_title(f"{classes[int(p)]}/{classes[int(y)]}\n{float(loss):.2f} / {float(pr[int(y)]):.2f}", fontsize=7)
    fig.suptitle("top losses: predicted/true, loss / probability of the true class", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    return path
