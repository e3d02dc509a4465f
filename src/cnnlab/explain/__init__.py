"""Attribution methods on Captum, and the pictures made from them.

One method per module, each a subclass of :class:`~cnnlab.explain.base.AttributionMethod`
with one call: ``attribute(model, images, target, **options) -> maps (N, H, W)``.

>>> sorted(METHODS)  # doctest: +NORMALIZE_WHITESPACE
['gradcam', 'gradient_shap', 'guided_backprop', 'guided_gradcam', 'integrated_gradients',
 'occlusion', 'saliency', 'smoothgrad']
>>> get_method("grad_cam")
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: unknown attribution method 'grad_cam'; did you mean 'gradcam'?

Captum is imported when a method runs, not when this package is imported.
"""

from __future__ import annotations

from typing import Any

from cnnlab.errors import CnnlabError, did_you_mean
from cnnlab.explain.base import AttributionMethod
from cnnlab.explain.gradcam import GradCam
from cnnlab.explain.gradient_shap import GradientShap
from cnnlab.explain.guided_backprop import GuidedBackprop
from cnnlab.explain.guided_gradcam import GuidedGradCam
from cnnlab.explain.integrated_gradients import IntegratedGradients
from cnnlab.explain.occlusion import Occlusion
from cnnlab.explain.saliency import Saliency
from cnnlab.explain.smoothgrad import SmoothGrad

METHODS: dict[str, type[AttributionMethod]] = {
    cls.name: cls for cls in (Saliency, GradCam, GuidedBackprop, GuidedGradCam, SmoothGrad, IntegratedGradients,
                              Occlusion, GradientShap)
}
DEFAULT_METHODS = ("saliency", "gradcam", "guided_gradcam", "integrated_gradients", "occlusion")


def get_method(name: str) -> AttributionMethod:
    """The method registered as ``name``; an unknown name suggests the nearest."""
    if name not in METHODS:
        raise CnnlabError(f"unknown attribution method '{name}'; {did_you_mean(name, METHODS)}")
    return METHODS[name]()


def attribute(method: str, model, images, target, **options: Any):
    """Shortcut: ``get_method(method).attribute(model, images, target, **options)``."""
    return get_method(method).attribute(model, images, target, **options)


__all__ = ["METHODS", "DEFAULT_METHODS", "AttributionMethod", "get_method", "attribute"]
