"""From the detector's output to detections: decode, score, threshold, class-aware NMS, cap.

The whole batch goes through ONE ``torchvision.ops.batched_nms`` call: each candidate's
group is ``image * K + class``, so boxes of different images or different classes never
suppress each other (class-aware NMS), and no Python loop runs per image or per class.

>>> import torch
>>> pred = torch.zeros(1, 2, 5 + 1)
>>> pred[0, :, :4] = 4.0                  # two 8x8 boxes around their points
>>> pred[0, :, 4:] = torch.tensor([[5.0, 5.0], [4.0, 5.0]])   # obj and class logits
>>> points = torch.tensor([[10., 10.], [11., 10.]])  # almost the same place: NMS keeps the better one
>>> dets = postprocess(pred, points, score_threshold=0.1, iou_threshold=0.5, max_detections=10)
>>> dets[0]["boxes"].tolist(), dets[0]["labels"].tolist()
([[6.0, 6.0, 14.0, 14.0]], [0])
"""

from __future__ import annotations

import torch
from torchvision.ops import batched_nms

from cnnlab.detect.loss import decode


def postprocess(pred: torch.Tensor, points: torch.Tensor, *, score_threshold: float = 0.05,
                iou_threshold: float = 0.5, max_detections: int = 100, pre_nms_top_k: int = 1000,
                image_size: tuple[int, int] | None = None) -> list[dict[str, torch.Tensor]]:
    """Detections per image: a list of ``{"boxes": (D, 4), "scores": (D,), "labels": (D,)}``.

    ``pred`` (N, A, 5 + K) is the detector's output, ``points`` (A, 2) its cell centres. A
    candidate is a (point, class) pair scored ``sigmoid(obj) * sigmoid(class)``; per image the
    ``pre_nms_top_k`` best above ``score_threshold`` enter NMS, and the best ``max_detections``
    that survive are returned, highest score first. ``image_size`` (H, W) clips boxes to the image.
    """
    n, a, cols = pred.shape
    k = cols - 5
    pred = pred.float()
    boxes = decode(pred, points)  # (N, A, 4)
    if image_size is not None:
        h, w = image_size
        boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                             boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], dim=-1)
    scores = torch.sigmoid(pred[..., 4:5]) * torch.sigmoid(pred[..., 5:])  # (N, A, K)
    flat = scores.reshape(n, a * k)
    top = min(pre_nms_top_k, a * k)
    values, idx = flat.topk(top, dim=1)  # (N, top), sorted high to low
    keep = values > score_threshold
    img = torch.arange(n, device=pred.device).view(n, 1).expand(n, top)[keep]  # (M,)
    cand_scores = values[keep]
    point = (idx // k)[keep]
    label = (idx % k)[keep]
    cand_boxes = boxes[img, point]  # (M, 4)
    kept = batched_nms(cand_boxes, cand_scores, img * k + label, iou_threshold)  # sorted by score, descending
    # Per image, the best max_detections: a stable sort by image keeps each image's score order.
    kept = kept[torch.sort(img[kept], stable=True).indices]
    kept_img = img[kept]
    counts = torch.bincount(kept_img, minlength=n)  # (N,)
    first = torch.cumsum(counts, 0) - counts  # index of each image's first detection in `kept`
    rank = torch.arange(len(kept), device=pred.device) - first[kept_img]
    kept = kept[rank < max_detections]
    counts = counts.clamp(max=max_detections).tolist()
    out = []
    for part in torch.split(kept, counts):
        out.append({"boxes": cand_boxes[part], "scores": cand_scores[part], "labels": label[part]})
    return out


def reference_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float,
                  max_detections: int) -> torch.Tensor:
    """Slow and obviously right: ``torchvision.ops.nms`` class by class, merged by score, capped.

    Returns the kept indices, best first. Tests compare :func:`postprocess` with this.
    """
    from torchvision.ops import nms

    kept = []
    for c in labels.unique():
        members = (labels == c).nonzero(as_tuple=True)[0]
        kept.append(members[nms(boxes[members], scores[members], iou_threshold)])
    if not kept:
        return torch.zeros(0, dtype=torch.long)
    kept = torch.cat(kept)
    kept = kept[torch.argsort(scores[kept], descending=True, stable=True)]
    return kept[:max_detections]
