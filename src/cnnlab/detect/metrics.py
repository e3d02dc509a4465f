"""mAP from a well-kept library: ``torchmetrics.detection.MeanAveragePrecision`` (COCO rules).

cnnlab computes no average precision of its own: torchmetrics (with the
``faster_coco_eval`` backend, the COCO evaluation in C++) does, and this module only
feeds it and reads its answer. mAP@0.5 per class is read from the COCO precision table
that the library returns (``extended_summary``): precision at the 101 recall points
for IoU 0.5, averaged over the points where it is defined -- the very numbers COCO
averages for ``map_50``. The same table gives the precision-recall curves.

Needs the ``detect`` extra: ``pip install 'cnnlab[detect]'``.

>>> import torch
>>> gt = [{"boxes": torch.tensor([[10., 10., 50., 50.]]), "labels": torch.tensor([0])}]
>>> dt = [{"boxes": torch.tensor([[10., 10., 50., 50.]]), "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}]
>>> r = detection_map(dt, gt, ["raccoon"])  # doctest: +SKIP
>>> r["map50"], r["map"], r["per_class"]["raccoon"]["map50"]  # doctest: +SKIP
(1.0, 1.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import torch

from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_path

BACKEND = "faster_coco_eval"


def _metric_class():
    try:
        from torchmetrics.detection import MeanAveragePrecision
        import faster_coco_eval  # noqa: F401  (the backend; torchmetrics imports it lazily)
    except ImportError:
        raise CnnlabError("detection metrics need torchmetrics and faster-coco-eval; "
                          "pip install 'cnnlab[detect]'") from None
    return MeanAveragePrecision


def detection_map(preds: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]],
                  classes: list[str], curves: bool = False) -> dict[str, Any]:
    """COCO mAP of detections against ground truth (both lists with one dict per image).

    ``preds``: ``boxes`` (D, 4) x1y1x2y2, ``scores`` (D,), ``labels`` (D,); ``targets``:
    ``boxes`` (K, 4), ``labels`` (K,). Returns ``map50`` (mAP@0.5), ``map`` (mAP@[.5:.95]),
    ``map75``, ``mar100`` and ``per_class`` = {name: {"map50", "map", "boxes"}}; a class
    with no ground-truth box has None. With ``curves``, also ``pr_curves`` = {name:
    (recall points, precision at IoU 0.5)} for the precision-recall plot.
    """
    Metric = _metric_class()
    metric = Metric(box_format="xyxy", iou_type="bbox", backend=BACKEND, class_metrics=True,
                    extended_summary=True)
    cpu = lambda d: {k: v.detach().cpu() for k, v in d.items()}  # noqa: E731
    metric.update([cpu(p) for p in preds], [cpu(t) for t in targets])
    result = metric.compute()

    def num(v) -> float | None:
        v = float(v)
        return None if v < 0 else v  # COCO says -1 where nothing was there to measure

    # precision: (T iou thresholds, R=101 recall points, K classes seen, A areas, M max-dets);
    # -1 where undefined. Index 0 is IoU 0.5, area 0 "all", the last max-dets (100).
    precision = result["precision"]
    seen = [int(c) for c in torch.atleast_1d(result["classes"]).tolist()]
    per_map = torch.atleast_1d(result["map_per_class"]).tolist()
    counts = torch.bincount(torch.cat([t["labels"].cpu().long() for t in targets] or [torch.zeros(0, dtype=torch.long)]),
                            minlength=len(classes)).tolist()
    per_class: dict[str, dict[str, Any]] = {}
    pr_curves: dict[str, tuple[list[float], list[float]]] = {}
    recall_points = torch.linspace(0, 1, precision.shape[1]) if precision.dim() == 5 else None
    for col, c in enumerate(seen):
        if c >= len(classes):
            raise CnnlabError(f"a detection or box has class id {c}, beyond the {len(classes)} classes")
        p50 = precision[0, :, col, 0, -1] if precision.dim() == 5 else torch.zeros(0)
        defined = p50[p50 > -1]
        has_gt = counts[c] > 0
        per_class[classes[c]] = {
            "map50": float(defined.mean()) if has_gt and len(defined) else (0.0 if has_gt else None),
            "map": num(per_map[col]) if has_gt else None,
            "boxes": counts[c],
        }
        if curves and has_gt:
            pr_curves[classes[c]] = (recall_points.tolist(), p50.clamp(min=0).tolist())
    for c, name in enumerate(classes):
        per_class.setdefault(name, {"map50": None, "map": None, "boxes": counts[c]})
    out = {"map50": num(result["map_50"]), "map": num(result["map"]), "map75": num(result["map_75"]),
           "mar100": num(result["mar_100"]), "per_class": per_class,
           "images": len(targets), "boxes": sum(counts)}
    if curves:
        out["pr_curves"] = pr_curves
    return out


def plot_pr_curves(pr_curves: dict[str, tuple[list[float], list[float]]], path, title: str = "") -> None:
    """Precision-recall at IoU 0.5, one line per class (the report/ figure style), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for name, (recall, precision) in pr_curves.items():
        area = sum(precision) / max(len(precision), 1)
        ax.plot(recall, precision, label=f"{name} (AP50 {area:.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title or "precision-recall at IoU 0.5")
    if pr_curves:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
