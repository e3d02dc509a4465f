"""The model registry: names to constructors, duplicates refused.

Building by name with weights (``create_model``) is :mod:`cnnlab.models.factory`, on top of this.

>>> from cnnlab.models import create_model, list_models
>>> "resnet9" in list_models()
True
>>> model = create_model("mnist_classic", num_classes=10, in_channels=1)
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.models.checks import short
from cnnlab.models.external import external_constructor

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
    if isinstance(name, str) and name.startswith(("tv:", "timm:")):  # torchvision / timm networks by name
        return external_constructor(name)
    if name not in _REGISTRY:
        raise CnnlabError(f"unknown model {short(name)}; {did_you_mean(str(name), _REGISTRY)}")
    return _REGISTRY[name]


def model_arguments(name: str) -> dict[str, Any]:
    """Keyword arguments a model takes, with their defaults (``inspect.Parameter.empty`` if none)."""
    signature = inspect.signature(get_model_constructor(name))
    return {
        p.name: p.default
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


MAX_PARAMETERS = 1_000_000_000  # 4 GB of float32 weights, 16 GB with Adam's state: no CPU lab model is near it
MAX_ACTIVATIONS = 4_000_000_000  # values the layers output for ONE image (16 GB in float32)
MAX_MESSAGE = 300  # characters of an error line from building a model


def build_registered(name: str, **kwargs: Any):
    """Build the registered (or ``tv:``/``timm:``) model ``name``, every keyword checked against its signature.

    This is :func:`cnnlab.models.create_model` without the weights: use that one.

    An unknown keyword is an error naming the nearest valid one, before any
    layer is built. The model is first built on the ``meta`` device (shapes
    only, no memory) so that options asking for an absurd network
    (``filters=10**7``) are refused with its size before anything is
    allocated. Whatever goes wrong while building -- our checks or an error
    from inside torch -- comes out as one :class:`CnnlabError` line naming the
    model and the options given.
    """
    constructor = get_model_constructor(name)
    valid = model_arguments(name)
    open_options = name.startswith(("tv:", "timm:"))  # their library checks its own options
    for key in kwargs:
        if key not in valid and not open_options:
            raise CnnlabError(_cap(f"model '{name}' has no option {short(key)}; {did_you_mean(str(key), valid)}"))
    try:
        _check_size(constructor, kwargs)
        return constructor(**kwargs)
    except CnnlabError as exc:
        raise CnnlabError(_cap(_with_model(name, str(exc)))) from exc
    except Exception as exc:  # an error inside torch or our code (MemoryError included): still one line
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise CnnlabError(_cap(f"cannot build model '{name}' with {_options(kwargs)}: "
                               f"{type(exc).__name__}: {reason}")) from exc


def _check_size(constructor: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Build on the meta device and refuse a network whose weights or activations are absurd.

    A build that fails only on meta (an op without a meta kernel) is left to
    the real build, which then reports its own error.
    """
    import torch

    try:
        with torch.device("meta"):
            model = constructor(**kwargs)
    except CnnlabError:
        raise
    except Exception:  # noqa: BLE001 -- the real build below decides
        return
    params = sum(p.numel() for p in model.parameters())
    if params > MAX_PARAMETERS:
        raise CnnlabError(f"{_options(kwargs) or 'the defaults'} would give {params:.3g} parameters "
                          f"({params * 4 / 1e9:.3g} GB); the limit is {MAX_PARAMETERS:.0e}: use smaller values")
    size = getattr(model, "default_input_size", None)
    if size is None:
        return
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.device("meta"), torch.no_grad():
            model.eval()(torch.zeros(1, *size))
    except Exception:  # noqa: BLE001 -- a size the model cannot take is reported by the real build
        return
    finally:
        for handle in handles:
            handle.remove()
    if total > MAX_ACTIVATIONS:
        raise CnnlabError(f"{_options(kwargs) or 'the defaults'} would make the layers output {total:.3g} values "
                          f"for one {tuple(size)} image ({total * 4 / 1e9:.3g} GB); the limit is "
                          f"{MAX_ACTIVATIONS:.0e}: use fewer filters or a smaller image_size")


def _options(kwargs: dict[str, Any]) -> str:
    """``key=value`` pairs, each value cut short, as an error line shows them."""
    return " ".join(f"{key}={short(value, 40)}" for key, value in kwargs.items())


def _with_model(name: str, message: str) -> str:
    return message if f"'{name}'" in message else f"model '{name}': {message}"


def _cap(message: str) -> str:
    message = " ".join(message.split())  # one line, whatever a wrapped error contained
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def _import_families() -> None:
    """Import every model family so its ``@register_model`` lines run."""
    # why here: each family imports this registry to register itself (the registration cycle)
    import cnnlab.models.families  # noqa: F401
