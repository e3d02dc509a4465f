"""The model registry: names to constructors, duplicates refused.

>>> from cnnlab.models import create_model, list_models
>>> "resnet9" in list_models()
True
>>> model = create_model("mnist_classic", num_classes=10, in_channels=1)
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from cnnlab.errors import CnnlabError, did_you_mean

_REGISTRY: dict[str, Callable[..., Any]] = {}


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding a model constructor (class or function) under ``name``."""

    def add(constructor: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise CnnlabError(f"a model named '{name}' is already registered; pick another name")
        _REGISTRY[name] = constructor
        return constructor

    return add


def list_models() -> list[str]:
    """All registered model names, sorted."""
    _import_families()
    return sorted(_REGISTRY)


def get_model_constructor(name: str) -> Callable[..., Any]:
    """The constructor registered under ``name``; unknown names list the nearest."""
    _import_families()
    if name not in _REGISTRY:
        raise CnnlabError(f"unknown model '{name}'; {did_you_mean(name, _REGISTRY)}")
    return _REGISTRY[name]


def model_arguments(name: str) -> dict[str, Any]:
    """Keyword arguments a model takes, with their defaults (``inspect.Parameter.empty`` if none)."""
    signature = inspect.signature(get_model_constructor(name))
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def create_model(name: str, **kwargs: Any):
    """Build the model ``name``; every keyword is checked against its signature.

    An unknown keyword is an error naming the nearest valid one, before any
    layer is built.
    """
    constructor = get_model_constructor(name)
    valid = model_arguments(name)
    for key in kwargs:
        if key not in valid:
            raise CnnlabError(
                f"model '{name}' has no option '{key}'; {did_you_mean(key, valid)}"
            )
    try:
        return constructor(**kwargs)
    except TypeError as exc:  # wrong value types surface as TypeError inside torch
        raise CnnlabError(f"cannot build model '{name}' with {kwargs}: {exc}") from exc


def _import_families() -> None:
    """Import every model family so its ``@register_model`` lines run."""
    import cnnlab.models.families  # noqa: F401
