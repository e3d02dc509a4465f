"""A model's top-level stages: the units that freezing and layer-wise learning rates count.

A stage is a direct child of ``model.features`` that holds parameters (a stem,
``layer1``, a conv block, ...), in forward order; the ``head`` is always the last
stage. ``model.freeze=all_but_last_k`` with ``model.freeze_k=K`` trains the last
K feature stages plus the head; ``optim.layer_decay=d`` gives stage ``i`` of ``S``
the learning rate ``lr * d ** (S - 1 - i)`` (the head gets ``lr``).

>>> from cnnlab.models import create_model
>>> [name for name, _ in model_stages(create_model("resnet18", num_classes=10))]
['features.stem', 'features.layer1', 'features.layer2', 'features.layer3', 'features.layer4', 'head']
"""

from __future__ import annotations

from torch import nn


def model_stages(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(qualified name, module), ...]``: the feature stages with parameters, then the head."""
    features = getattr(model, "features", None)
    head = getattr(model, "head", None)
    if not isinstance(features, nn.Module) or not isinstance(head, nn.Module):
        # Not an ImageClassifier: every top-level child with parameters is a stage.
        return [(n, m) for n, m in model.named_children() if any(True for _ in m.parameters())]
    stages = [(f"features.{n}", m) for n, m in features.named_children() if any(True for _ in m.parameters())]
    if not stages and any(True for _ in features.parameters()):
        stages = [("features", features)]  # a features module without children (a wrapper) is one stage
    return stages + [("head", head)]

