"""Per-layer model options shared by ``convnet`` and ``mnist_classic``: dropout and activation per
block, DropConnect on the dense layers, separate conv/linear weight initialisation.

Each function turns the constructor's options into one value per layer, refusing lists of the
wrong length in one line that names the option:

>>> dropout_plan(0.0, "dense", [0.1, 0.2], 0.5, conv_blocks=2, dense_layers=1)
([0.1, 0.2], [0.5])
>>> [a.__name__ for a in activation_plan(["relu", "tanh", "gelu"], conv_blocks=2, dense_layers=1)[0]]
['ReLU', 'Tanh']
>>> init_plan("xavier_uniform", "normal_0.01", None)
('normal_0.01', 'xavier_uniform')
"""

from __future__ import annotations

from typing import Any, Optional

from torch import nn

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.models import checks
from cnnlab.models.layers import get_activation
from cnnlab.nn.dropconnect import DropConnectLinear

# Weight-init rules a config may name (``init``, ``init_conv``, ``init_linear``); ``kaiming`` is kaiming_normal.
INIT_CHOICES = ("default", "kaiming", "kaiming_normal", "kaiming_uniform", "kaiming_normal_fan_out", "xavier_normal",
                "xavier_uniform", "orthogonal", "normal_0.01")


def _per_layer(name: str, value: Any, count: int, what: str) -> list:
    """``value`` repeated ``count`` times, or a list of exactly ``count`` values."""
    if isinstance(value, (list, tuple)):
        if len(value) != count:
            raise CnnlabError(f"{name} lists {len(value)} values but the model has {count} {what}; give one per "
                              "layer, or one value for all")
        return list(value)
    return [value] * count


def dropout_plan(dropout: float, dropout_where: str, dropout_conv: Any, dropout_dense: Any, conv_blocks: int,
                 dense_layers: int) -> tuple[list[float], list[float]]:
    """(rate per conv block, rate per hidden dense layer).

    ``dropout_conv`` / ``dropout_dense`` (a rate or a per-layer list) replace the single ``dropout``
    placed by ``dropout_where``; giving both kinds is refused.
    """
    checks.fraction("dropout", dropout)
    checks.choice("dropout_where", dropout_where, ("conv", "dense", "both"))
    if dropout_conv is None and dropout_dense is None:
        conv = dropout if dropout_where in ("conv", "both") else 0.0
        dense = dropout if dropout_where in ("dense", "both") else 0.0
        return [conv] * conv_blocks, [dense] * dense_layers
    if dropout > 0:
        raise CnnlabError("give either dropout (with dropout_where) or dropout_conv/dropout_dense, not both")
    conv = _per_layer("dropout_conv", 0.0 if dropout_conv is None else dropout_conv, conv_blocks, "conv blocks")
    dense = _per_layer("dropout_dense", 0.0 if dropout_dense is None else dropout_dense, dense_layers,
                       "hidden dense layers")
    if dense_layers == 0 and dropout_dense not in (None, 0, 0.0, []):
        raise CnnlabError("dropout_dense needs a hidden dense layer, and this model has none (dense=0)")
    return ([checks.fraction(f"dropout_conv[{i}]", v) for i, v in enumerate(conv)],
            [checks.fraction(f"dropout_dense[{i}]", v) for i, v in enumerate(dense)])


def activation_plan(activation: Any, conv_blocks: int, dense_layers: int) -> tuple[list[type], list[type]]:
    """(activation class per conv block, per hidden dense layer) from a name or a list.

    A list names one activation per conv block (the dense layers then take the last block's), or
    one per conv block and then one per hidden dense layer.
    """
    if not isinstance(activation, (list, tuple)):
        act = get_activation(activation)
        return [act] * conv_blocks, [act] * dense_layers
    if len(activation) not in (conv_blocks, conv_blocks + dense_layers):
        both = f" or {conv_blocks + dense_layers} (one per block, then one per hidden dense layer)" \
            if dense_layers else ""
        raise CnnlabError(f"activation lists {len(activation)} values; give {conv_blocks} (one per conv block)"
                          f"{both}, or one name for all")
    acts = [get_activation(a) for a in activation]
    conv = acts[:conv_blocks]
    dense = acts[conv_blocks:] if len(acts) > conv_blocks else [conv[-1]] * dense_layers
    return conv, dense


def init_plan(init: str, init_conv: Optional[str], init_linear: Optional[str]) -> tuple[str, str]:
    """(conv rule, linear rule): ``init`` for both unless ``init_conv`` / ``init_linear`` say otherwise."""
    rules = []
    for name, value in (("init", init), ("init_conv", init_conv), ("init_linear", init_linear)):
        if value is not None and value not in INIT_CHOICES:
            raise CnnlabError(f"unknown {name} {checks.short(value)}; {did_you_mean(str(value), INIT_CHOICES)}")
        rules.append("kaiming_normal" if value == "kaiming" else value)
    init, conv, linear = rules
    return conv or init, linear or init


def dense_layer(in_features: int, out_features: int, dropconnect: float) -> nn.Linear:
    """A hidden dense layer: ``nn.Linear``, or :class:`cnnlab.nn.DropConnectLinear` when ``dropconnect > 0``."""
    if dropconnect > 0:
        return DropConnectLinear(in_features, out_features, p=dropconnect)
    return nn.Linear(in_features, out_features)


def check_dropconnect(dropconnect: Any, dense_layers: int) -> float:
    """``dropconnect`` as a rate; refused (one line) on a model whose head has no hidden dense layer."""
    p = checks.fraction("dropconnect", dropconnect)
    if p > 0 and dense_layers == 0:
        raise CnnlabError("dropconnect drops the weights of hidden dense layers, and this model has none (dense=0); "
                          "give it one (e.g. dense=128) or drop dropconnect")
    return p
