"""The torchmetrics mAP wrapper: 1.0 for perfect detections, and a case computed by hand."""

import pytest
import torch

from cnnlab.detect.metrics import detection_map


def _gt(boxes, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels)}


def _dt(boxes, scores, labels):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32), "scores": torch.tensor(scores),
            "labels": torch.tensor(labels)}


def test_perfect_detections_score_one():
    g = torch.Generator().manual_seed(0)
    gts, dts = [], []
    for _ in range(6):
        xy = torch.rand(3, 2, generator=g) * 80
        boxes = torch.cat([xy, xy + 10 + torch.rand(3, 2, generator=g) * 40], 1)
        labels = torch.randint(0, 3, (3,), generator=g)
        gts.append({"boxes": boxes, "labels": labels})
        dts.append({"boxes": boxes.clone(), "scores": torch.rand(3, generator=g), "labels": labels.clone()})
    r = detection_map(dts, gts, ["a", "b", "c"])
    assert r["map50"] == pytest.approx(1.0) and r["map"] == pytest.approx(1.0)
    assert all(v["map50"] == pytest.approx(1.0) for v in r["per_class"].values() if v["boxes"])


def test_hand_computed_average_precision():
    # Two objects; three detections by score: hit (.9), miss (.8), hit (.7).
    # (precision, recall) after each: (1, 1/2), (1/2, 1/2), (2/3, 1). COCO interpolates precision
    # at 101 recall points r = 0, .01, ..., 1: for r <= .5 the best precision at recall >= r is 1
    # (51 points), for r > .5 it is 2/3 (50 points). AP = (51 * 1 + 50 * 2/3) / 101.
    gt = [_gt([[10, 10, 50, 50], [60, 60, 90, 90]], [0, 0])]
    dt = [_dt([[10, 10, 50, 50], [100, 100, 120, 120], [60, 60, 90, 90]], [0.9, 0.8, 0.7], [0, 0, 0])]
    expected = (51 * 1 + 50 * 2 / 3) / 101
    r = detection_map(dt, gt, ["only"], curves=True)
    assert r["map50"] == pytest.approx(expected, abs=1e-6)
    assert r["per_class"]["only"]["map50"] == pytest.approx(expected, abs=1e-6)
    recall, precision = r["pr_curves"]["only"]
    assert precision[:51] == pytest.approx([1.0] * 51) and precision[51:] == pytest.approx([2 / 3] * 50)


def test_iou_thresholds_and_per_class():
    # class 0: a detection with IoU 0.64 (counts at 0.5 .. 0.6, not above) -> AP50 1, AP[.5:.95] 3/10;
    # class 1: only a wrong-class detection -> 0. Overall: the mean of the two classes.
    gt = [_gt([[0, 0, 100, 100], [200, 200, 240, 240]], [0, 1])]
    dt = [_dt([[0, 0, 80, 80], [200, 200, 240, 240]], [0.9, 0.8], [0, 0])]
    r = detection_map(dt, gt, ["a", "b"])
    assert r["per_class"]["a"]["map50"] == pytest.approx(1.0)
    assert r["per_class"]["a"]["map"] == pytest.approx(0.3)
    assert r["per_class"]["b"]["map50"] == pytest.approx(0.0)
    assert r["map50"] == pytest.approx(0.5) and r["map"] == pytest.approx(0.15)
