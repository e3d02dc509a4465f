"""Run a detector over a split: detections, the loss and mAP. Used by training (validation),
``cnnlab eval`` and the benchmark; it does not import the trainer.

>>> result = evaluate_detector(model, batches, cfg.detect, classes)  # doctest: +SKIP
>>> result["map50"], result["map"]  # doctest: +SKIP
(0.97, 0.71)
"""

from __future__ import annotations

from typing import Any

import torch

from cnnlab.detect.loss import DetectionLoss
from cnnlab.detect.metrics import detection_map
from cnnlab.detect.postprocess import postprocess


def nms_options(dcfg) -> dict[str, Any]:
    return {"score_threshold": dcfg.score_threshold, "iou_threshold": dcfg.iou_threshold,
            "max_detections": dcfg.max_detections, "pre_nms_top_k": dcfg.pre_nms_top_k}


@torch.no_grad()
def detect_batches(model, batches, dcfg, with_loss: bool = True) -> tuple[list, list, float | None]:
    """(detections, targets, mean loss per batch) over every batch; the model is left in its mode."""
    was_training = model.training
    model.eval()
    try:
        h, w = model.input_size[1:]
        points = model.points().to(next(model.parameters()).device)
        strides = model.point_strides().to(points.device)
        loss_fn = DetectionLoss(dcfg, model.strides) if with_loss else None
        preds, targets, loss_sum, n = [], [], 0.0, 0
        for x, t in batches:
            out = model(x)  # (B, A, 5 + K)
            if loss_fn is not None:
                loss_sum += float(loss_fn(out, points, strides, t.boxes, t.labels)["loss"]) * len(t)
                n += len(t)
            preds += postprocess(out, points, image_size=(h, w), **nms_options(dcfg))
            targets += t.as_dicts()
        return preds, targets, (loss_sum / n if n else None)
    finally:
        model.train(was_training)


def evaluate_detector(model, batches, dcfg, classes: list[str], curves: bool = False) -> dict[str, Any]:
    """mAP@0.5, mAP@[.5:.95], per class, and the loss of ``model`` on ``batches``."""
    preds, targets, loss = detect_batches(model, batches, dcfg)
    result = detection_map(preds, targets, classes, curves=curves)
    result["loss"] = loss
    result["detections"] = preds
    result["targets"] = targets
    return result
