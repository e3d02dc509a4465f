"""The detection loss: box (IoU / GIoU / CIoU) + objectness (BCE or focal) + class (BCE).

Each term is a sum over points divided by the number of positive points in the batch
(at least 1), so the loss per object does not depend on the image size or the number
of cells: the normalisation of FCOS and YOLOX.

* box: on positives only, ``torchvision.ops`` ``generalized_box_iou_loss`` /
  ``complete_box_iou_loss`` (or 1 - IoU) between the decoded prediction and its box;
* objectness: every point, target 1 on positives and 0 elsewhere;
* class: positives only, one-hot targets with a sigmoid per class (no softmax), so
  "which class" is learnt where there is an object and the score is obj * class.

>>> import torch
>>> from cnnlab.config import DetectConfig
>>> loss_fn = DetectionLoss(DetectConfig(strides=[16]), strides=[16])
>>> pred = torch.zeros(1, 4, 5 + 2); pred[..., :4] = 8.0   # 2x2 grid, every box 16x16 around its point
>>> parts = loss_fn(pred, torch.tensor([[8., 8.], [24., 8.], [8., 24.], [24., 24.]]), torch.full((4,), 16.),
...                 [torch.tensor([[0., 0., 16., 16.]])], [torch.tensor([1])])
>>> round(parts["box"].item(), 6), parts["positives"].item()   # the one positive's box is exact
(0.0, 1)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import complete_box_iou_loss, generalized_box_iou_loss, sigmoid_focal_loss
from torchvision.ops.boxes import box_iou

from cnnlab.detect.targets import assign, level_ranges, pad_targets


def decode(pred: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(N, A, 5 + K) predictions + (A, 2) points -> (N, A, 4) boxes x1, y1, x2, y2 in input pixels."""
    d = pred[..., :4]
    return torch.cat([points - d[..., :2], points + d[..., 2:4]], dim=-1)


def iou_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-box loss (M,) for (M, 4) boxes: ``1 - IoU``, GIoU loss or CIoU loss (torchvision)."""
    if kind == "giou":
        return generalized_box_iou_loss(pred, target, reduction="none")
    if kind == "ciou":
        return complete_box_iou_loss(pred, target, reduction="none")
    return 1.0 - box_iou(pred, target).diagonal()


class DetectionLoss:
    """Assigns targets (:mod:`cnnlab.detect.targets`) and sums the three weighted terms.

    Called with the detector's raw output, its points and point strides, and per-image
    lists of boxes (K_i, 4) and labels (K_i,); returns a dict with ``loss`` (the weighted
    total to backpropagate), ``box``, ``obj``, ``cls`` (unweighted, for logging) and
    ``positives`` (how many points learnt a box).
    """

    def __init__(self, cfg, strides: Sequence[int]) -> None:
        self.cfg = cfg
        self.strides = list(strides)
        self._ranges: torch.Tensor | None = None

    def __call__(self, pred: torch.Tensor, points: torch.Tensor, point_strides: torch.Tensor,
                 boxes: list[torch.Tensor], labels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        pred = pred.float()
        device = pred.device
        if self._ranges is None or len(self._ranges) != len(points) or self._ranges.device != device:
            self._ranges = level_ranges(self.strides, point_strides.cpu(), cfg.size_ranges).to(device)
        gt_boxes, gt_labels, valid = pad_targets(boxes, labels, device)  # (B, K, 4), (B, K), (B, K)
        match = assign(points, point_strides, self._ranges, gt_boxes, valid, cfg.center_radius)  # (B, A)
        pos = match >= 0
        num_pos = pos.sum()
        norm = num_pos.clamp(min=1).float()
        obj_logits = pred[..., 4]  # (B, A)
        obj_target = pos.float()
        if cfg.obj_loss == "focal":
            obj = sigmoid_focal_loss(obj_logits, obj_target, reduction="sum") / norm
        else:
            obj = F.binary_cross_entropy_with_logits(obj_logits, obj_target, reduction="sum") / norm
        b_idx, a_idx = pos.nonzero(as_tuple=True)  # (M,), (M,) the positive points
        g_idx = match[b_idx, a_idx]
        if len(b_idx):
            boxes_pred = decode(pred[b_idx, a_idx].unsqueeze(0), points[a_idx]).squeeze(0)  # (M, 4)
            box = iou_loss(boxes_pred, gt_boxes[b_idx, g_idx], cfg.box_loss).sum() / norm
            cls_logits = pred[b_idx, a_idx, 5:]  # (M, K)
            cls_target = F.one_hot(gt_labels[b_idx, g_idx], cls_logits.shape[1]).float()
            cls = F.binary_cross_entropy_with_logits(cls_logits, cls_target, reduction="sum") / norm
        else:  # no object in the batch: only objectness learns (to say "nothing here")
            box = cls = pred[..., :4].sum() * 0.0
        total = cfg.box_weight * box + cfg.obj_weight * obj + cfg.cls_weight * cls
        return {"loss": total, "box": box.detach(), "obj": obj.detach(), "cls": cls.detach(),
                "positives": num_pos.detach()}
