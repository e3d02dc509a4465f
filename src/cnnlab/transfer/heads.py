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

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.factory import create_model
from cnnlab.models.pretrained import TAGS
from cnnlab.transfer.pretrained import imagenet_wnids
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


HEAD_INIT_CHOICES = ("imagenet",)


def require_published_weights(weights: Any) -> None:
    """``model.head_init=imagenet`` reads the published classifier: refuse any other ``model.weights``."""
    if weights not in TAGS:
        raise CnnlabError(f"model.head_init=imagenet needs published ImageNet weights (model.weights="
                          f"{'|'.join(TAGS)}), got model.weights={weights!r}")


def check_head_init(options: dict) -> None:
    """Refuse ``model.head_init`` in ``options`` (the config's model options) where it cannot work, before any data."""
    head_init = options.get("head_init")
    if head_init is None:
        return
    if head_init not in HEAD_INIT_CHOICES:
        raise CnnlabError(f"model.head_init={head_init!r} is not one of: {', '.join(HEAD_INIT_CHOICES)} (or null)")
    require_published_weights(options.get("weights"))
    for other in ("head_hidden", "features_from"):
        if options.get(other) is not None:
            raise CnnlabError(f"model.head_init=imagenet starts the model's own classifier from ImageNet's; "
                              f"it cannot combine with model.{other}")


def init_head_from_imagenet(model: nn.Module, model_name: str, weights: Any, classes: list[str]) -> list[int]:
    """``model.head_init=imagenet``: the new classifier starts as the ImageNet classifier's rows of ``classes``.

    When a dataset's classes are ImageNet classes (its class folders are WordNet ids, as Imagenette's
    are), the published 1,000-way classifier already separates them: row ``i`` of its weight and
    bias scores ImageNet class ``i``. Copying the rows of the dataset's classes, in the dataset's
    order, gives the fine-tuning run the zero-shot classifier at step 0 instead of a random one
    (which the first epochs spend catching up on). Returns the ImageNet indices used.

    Only published weights (``model.weights=in1k``) qualify; the classifier must be the model's
    own (no ``model.head_hidden``, whose new dense layer has no ImageNet counterpart).
    """
    require_published_weights(weights)
    wnids = imagenet_wnids()
    foreign = [c for c in classes if c not in wnids]
    if foreign:
        raise CnnlabError(f"model.head_init=imagenet needs classes named by ImageNet WordNet ids (like n01440764); "
                          f"{', '.join(map(repr, foreign[:3]))} {'is' if len(foreign) == 1 else 'are'} not; "
                          "drop model.head_init")
    source = create_model(f"{model_name}.{weights}").classifier_layer()  # Linear(D, 1000)
    target = model.classifier_layer()
    if not isinstance(target, nn.Linear) or target.in_features != source.in_features:
        raise CnnlabError("model.head_init=imagenet needs the model's own classifier (drop model.head_hidden)")
    rows = [wnids.index(c) for c in classes]
    with torch.no_grad():
        target.weight.copy_(source.weight[rows])  # (K, D): the K dataset classes' rows, in the dataset's order
        target.bias.copy_(source.bias[rows])
    return rows
