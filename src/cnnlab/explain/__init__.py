"""Attribution methods on Captum, and the pictures made from them.

One method per module, each a subclass of :class:`~cnnlab.explain.base.AttributionMethod`
with one call: ``attribute(model, images, target, **options) -> maps (N, H, W)``.

>>> METHOD_NAMES  # doctest: +NORMALIZE_WHITESPACE
('saliency', 'gradcam', 'guided_backprop', 'guided_gradcam', 'smoothgrad', 'integrated_gradients',
 'occlusion', 'gradient_shap')
>>> get_method("grad_cam")
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: unknown attribution method 'grad_cam'; did you mean 'gradcam'?

Importing this package loads neither torch nor Captum (``cnnlab --help`` lists the
method names from here); a method's module is imported when it is first asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnlab.errors import CnnlabError, did_you_mean

# name -> (module, class); the order is the order figures show them in
_REGISTRY = {
    "saliency": ("saliency", "Saliency"),
    "gradcam": ("gradcam", "GradCam"),
    "guided_backprop": ("guided_backprop", "GuidedBackprop"),
    "guided_gradcam": ("guided_gradcam", "GuidedGradCam"),
    "smoothgrad": ("smoothgrad", "SmoothGrad"),
    "integrated_gradients": ("integrated_gradients", "IntegratedGradients"),
    "occlusion": ("occlusion", "Occlusion"),
    "gradient_shap": ("gradient_shap", "GradientShap"),
}
METHOD_NAMES = tuple(_REGISTRY)
DEFAULT_METHODS = ("saliency", "gradcam", "guided_gradcam", "integrated_gradients", "occlusion")


def method_class(name: str):
    """The class registered as ``name``; an unknown name suggests the nearest."""
    if name not in _REGISTRY:
        raise CnnlabError(f"unknown attribution method '{name}'; {did_you_mean(name, _REGISTRY)}")
    module, cls = _REGISTRY[name]
    found = getattr(importlib.import_module(f"cnnlab.explain.{module}"), cls)
    if found.name != name:  # a registry entry and its class must agree
        raise ImportError(f"cnnlab.explain.{module}.{cls}.name is {found.name!r}, registered as {name!r}")
    return found


def get_method(name: str):
    """An instance of the method registered as ``name``."""
    return method_class(name)()


def attribute(method: str, model, images, target, **options: Any):
    """Shortcut: ``get_method(method).attribute(model, images, target, **options)``."""
    return get_method(method).attribute(model, images, target, **options)


def __getattr__(name: str):
    # why lazy: METHODS (name -> class) and AttributionMethod load torch; `cnnlab --help` imports this package
    if name == "METHODS":
        return {n: method_class(n) for n in METHOD_NAMES}
    if name == "AttributionMethod":
        from cnnlab.explain.base import AttributionMethod

        return AttributionMethod
    raise AttributeError(f"module 'cnnlab.explain' has no attribute {name!r}")


__all__ = ["METHODS", "METHOD_NAMES", "DEFAULT_METHODS", "AttributionMethod", "get_method", "method_class",
           "attribute"]
