"""Finding layers by name: the conv layers of a model, and the default one for Grad-CAM.

Layers are named as ``model.named_modules()`` names them (``features.2.0``);
``cnnlab explain RUN_DIR --layer NAME`` takes those names, and an unknown one is
an error that lists the model's conv layers.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 8, 3))
>>> conv_layer_names(net)
['0', '2']
>>> last_conv_layer(net)
'2'
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.errors import CnnlabError, nearest


def conv_layer_names(model: nn.Module) -> list[str]:
    """Names of every 2-D convolution (``nn.Conv2d`` and subclasses such as ``FFTConv2d``), in module order."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def last_conv_layer(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> str:
    """The conv layer that runs last in a forward pass (module order when no input size is known).

    Execution order matters for models whose modules are declared in another order
    than they run; a dry run on the meta device finds it without computing anything.
    """
    names = conv_layer_names(model)
    if not names:
        raise CnnlabError(f"{type(model).__name__} has no conv layer; Grad-CAM needs one")
    size = input_size or getattr(model, "default_input_size", None)
    if size is None:
        return names[-1]
    order: list[str] = []
    by_module = {m: n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    handles = [m.register_forward_hook(lambda mod, i, o: order.append(by_module[mod])) for m in by_module]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *size, device=_device(model)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return order[-1] if order else names[-1]


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def get_layer(model: nn.Module, name: str, conv_only: bool = True) -> nn.Module:
    """The module called ``name``; an unknown name (or a non-conv one) lists the conv layers."""
    modules = dict(model.named_modules())
    convs = conv_layer_names(model)
    if name in modules and (not conv_only or name in convs):
        return modules[name]
    hint = nearest(name, convs)
    listed = ", ".join(convs[:40]) + (" ..." if len(convs) > 40 else "")
    what = "is not a conv layer" if name in modules else "is not a layer of this model"
    raise CnnlabError(f"layer '{name}' {what}" + (f"; did you mean '{hint}'? " if hint else "; ")
                      + f"conv layers: {listed}")
