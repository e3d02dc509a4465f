"""An extra dense layer before the classifier (``model.head_hidden=N``), on a live model or a feature head.

One of the classic fine-tuning choices: keep the pretrained features, and between their pooled
vector and the new classifier put a hidden layer of N units with a ReLU, trained from scratch.

>>> from cnnlab.models import create_model
>>> net = add_hidden_layer(create_model("efficientnet_lite0", num_classes=10), 64)
>>> [type(m).__name__ for m in net.head[3]], net.num_classes      # pool, flatten, dropout, then these
(['Linear', 'ReLU', 'Linear'], 10)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.checks import MAX_WIDTH, short


def check_hidden(value: Any) -> int:
    """``model.head_hidden`` must be a positive integer (no more than the zoo's widest layer)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_WIDTH:
        raise CnnlabError(f"model.head_hidden={short(value)} must be a positive integer (units of the extra dense "
                          f"layer, at most {MAX_WIDTH}); leave it out for no extra layer")
    return value


def add_hidden_layer(model: nn.Module, hidden: Any) -> nn.Module:
    """Replace the head's classifier ``Linear(D, K)`` with ``Linear(D, hidden) -> ReLU -> Linear(hidden, K)``.

    The new layers are freshly initialised and sit in ``head``, so freezing the features leaves them
    trainable. Returns ``model``.
    """
    hidden = check_hidden(hidden)
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module) or getattr(model, "stages_supported", True) is False:
        raise CnnlabError(f"model.head_hidden needs a model whose head ends in an nn.Linear cnnlab can replace; "
                          f"{type(model).__name__} keeps its classifier inside its library's module")
    old = model.classifier_layer()
    new = nn.Sequential(OrderedDict(hidden=nn.Linear(old.in_features, hidden), act=nn.ReLU(),
                                    out=nn.Linear(hidden, old.out_features)))  # (N, D) -> (N, hidden) -> (N, K)
    new.to(device=old.weight.device, dtype=old.weight.dtype)
    for parent in head.modules():
        for name, child in parent.named_children():
            if child is old:
                setattr(parent, name, new)
                return model
    if head is old:
        model.head = new
        return model
    raise CnnlabError("could not locate the classifier layer inside the head")
