"""Building a model by name: the front door of :mod:`cnnlab.models` (timm's ``create_model``).

>>> from cnnlab.models import create_model
>>> net = create_model("convnet", in_channels=1, num_classes=10, filters=[16, 32])

A registered name is built by :func:`cnnlab.models.registry.build_registered` (options checked, absurd
sizes refused); ``ARCH.TAG`` comes with its published weights (:mod:`cnnlab.models.pretrained`);
``weights=`` fills a new model from a file or a run (:mod:`cnnlab.models.weights`).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.checks import short
from cnnlab.models.pretrained import TAGS, create_pretrained, read_pretrained, split_name
from cnnlab.models.registry import build_registered
from cnnlab.models.online import download_weights
from cnnlab.models.weights import DOWNLOAD, MatchReport, WeightsFile, match_state, read_weights


def create_model(name: str, weights: Any = None, **kwargs: Any):
    """Build the model ``name``; every keyword is checked against its signature.

    ``ARCH.TAG`` (``efficientnet_lite0.in1k``) is the architecture with its published weights, in
    eval mode with a ``pretrained_cfg`` (:mod:`cnnlab.models.pretrained`).

    ``weights`` (a torchvision ``.pth`` state dict, a ``.safetensors`` file, a cnnlab
    run directory, or ``"download"``) fills the new model through
    :func:`load_weights_into`, which reports how the keys matched;
    a classifier of another class count is left freshly initialised.

    The options are checked, and an absurd network refused, by
    :func:`~cnnlab.models.registry.build_registered`: every error is one :class:`CnnlabError` line.
    """
    if isinstance(name, str) and "." in name and ":" not in name:  # ARCH.TAG: published weights
        if split_name(name) is not None:
            if weights is not None:
                raise CnnlabError(f"'{name}' names its weights already; drop weights={short(weights)}")
            return create_pretrained(name, **kwargs)
    model = build_registered(name, **kwargs)
    if weights is not None:
        load_weights_into(model, weights, name)
    return model


def load_weights_into(model: nn.Module, weights: Any, name: str,
                      say: Callable[[str], None] | None = None) -> MatchReport:
    """Fill ``model`` (built as ``name``) from ``weights``; print the match report through ``say`` (stderr)."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    if isinstance(weights, WeightsFile):
        source = weights
    elif isinstance(weights, str) and weights in TAGS:  # model.weights=in1k: the published weights of ``name``
        source = read_pretrained(f"{name}.{weights}")
    elif weights == DOWNLOAD:
        source = download_weights(name)
    elif isinstance(weights, (str, os.PathLike)):
        source = read_weights(weights)
    else:
        raise CnnlabError(f"model.weights must be a path, 'download' or a tag ({', '.join(TAGS)}), got {weights!r}")
    load, report = match_state(model, source, name)
    state = model.state_dict()
    state.update(load)
    model.load_state_dict(state)
    model.weights_meta = source.meta  # a run's normalisation and classes, for callers that want them
    if "pretrained_cfg" in source.meta:  # published weights: what they expect of an image
        model.pretrained_cfg = dict(source.meta["pretrained_cfg"])
        if report.reinitialised:
            model.pretrained_cfg.update(num_classes=getattr(model, "num_classes", None), classes=None)
    say(str(report))
    return report
