"""Evaluation: loss, accuracy and (optionally) every prediction over a split."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.train.precision import autocast
from cnnlab.train.tta import tta_logits


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    count: int
    logits: torch.Tensor | None = None  # (N, classes) on the CPU, when requested
    labels: torch.Tensor | None = None


@torch.no_grad()
def evaluate(model: nn.Module, batches, precision: str = "fp32", keep_logits: bool = False,
             tta: str = "none") -> EvalResult:
    """Mean cross-entropy and accuracy of ``model`` over ``batches``; the train/eval mode is restored.

    ``tta`` (flip, flip-translate) scores the mean logits over transformed copies (cnnlab.train.tta).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    count = 0
    all_logits, all_labels = [], []
    try:
        for x, y in batches:
            with autocast(device.type, precision):
                logits = tta_logits(model, x, tta)
            logits = logits.float()
            total_loss += F.cross_entropy(logits, y, reduction="sum").double()
            correct += (logits.argmax(1) == y).sum()
            count += len(y)
            if keep_logits:
                all_logits.append(logits.cpu())
                all_labels.append(y.cpu())
    finally:
        model.train(was_training)
    count = max(count, 1)
    return EvalResult(
        loss=total_loss.item() / count,
        accuracy=correct.item() / count,
        count=count,
        logits=torch.cat(all_logits) if keep_logits else None,
        labels=torch.cat(all_labels) if keep_logits else None,
    )
