"""NMS wrapper vs torchvision.ops.nms run class by class, image by image (the reference)."""

import pytest
import torch

from cnnlab.detect.loss import decode
from cnnlab.detect.postprocess import postprocess, reference_nms


def _random_pred(seed, n=3, a=60, k=3):
    g = torch.Generator().manual_seed(seed)
    points = torch.rand(a, 2, generator=g) * 100
    pred = torch.empty(n, a, 5 + k)
    pred[..., :4] = torch.rand(n, a, 4, generator=g) * 30 + 1  # distances: many overlapping boxes
    pred[..., 4:] = torch.randn(n, a, 1 + k, generator=g) * 2
    return pred, points


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("iou", [0.3, 0.5, 0.7])
def test_postprocess_equals_per_class_torchvision_nms(seed, iou):
    pred, points = _random_pred(seed)
    thr, cap = 0.2, 25
    dets = postprocess(pred, points, score_threshold=thr, iou_threshold=iou, max_detections=cap, pre_nms_top_k=10**6)
    boxes = decode(pred, points)  # (N, A, 4)
    scores = torch.sigmoid(pred[..., 4:5]) * torch.sigmoid(pred[..., 5:])  # (N, A, K)
    k = scores.shape[-1]
    for i, det in enumerate(dets):
        # every (point, class) above the threshold is a candidate
        a_idx, c_idx = (scores[i] > thr).nonzero(as_tuple=True)
        cand_boxes, cand_scores = boxes[i, a_idx], scores[i, a_idx, c_idx]
        keep = reference_nms(cand_boxes, cand_scores, c_idx, iou, cap)
        assert det["boxes"].shape[0] == len(keep) <= cap
        torch.testing.assert_close(det["scores"], cand_scores[keep])
        torch.testing.assert_close(det["boxes"], cand_boxes[keep])
        assert det["labels"].tolist() == c_idx[keep].tolist()
        assert (det["labels"] < k).all()


def test_classes_do_not_suppress_each_other_and_images_are_separate():
    pred = torch.zeros(2, 1, 5 + 2)
    pred[..., :4] = 5.0
    pred[..., 4:] = 4.0  # both classes score the same box highly, in both images
    dets = postprocess(pred, torch.tensor([[20., 20.]]), score_threshold=0.5, iou_threshold=0.5)
    assert [d["labels"].tolist() for d in dets] == [[0, 1], [0, 1]] or \
        [sorted(d["labels"].tolist()) for d in dets] == [[0, 1], [0, 1]]


def test_thresholds_and_cap():
    pred, points = _random_pred(1, n=2, a=200, k=2)
    none = postprocess(pred, points, score_threshold=1.0)
    assert all(len(d["boxes"]) == 0 for d in none)
    capped = postprocess(pred, points, score_threshold=0.0, iou_threshold=1.0, max_detections=7)
    assert [len(d["scores"]) for d in capped] == [7, 7]
    assert all((d["scores"][:-1] >= d["scores"][1:]).all() for d in capped)  # best first
    clipped = postprocess(pred, points, score_threshold=0.0, image_size=(50, 60))
    b = torch.cat([d["boxes"] for d in clipped])
    assert b.min() >= 0 and b[:, [0, 2]].max() <= 60 and b[:, [1, 3]].max() <= 50
