"""Analytic costs of one layer call: multiply-accumulates and output bytes.

Convention (the one behind published counts such as "ResNet-50: 4.1 G"):
a MAC is one multiply plus one add; **1 MAC = 2 FLOPs**. Only convolution
and linear layers are counted -- the same ops ``torch.utils.flop_counter``
counts, so the two agree exactly. Biases, norms, activations, pooling and
residual additions are left out (they are memory-bound and small).

>>> import torch
>>> conv = torch.nn.Conv2d(3, 64, 3)
>>> out = conv(torch.zeros(1, 3, 32, 32))      # (1, 64, 30, 30)
>>> layer_macs(conv, out)                       # 64*30*30 outputs x 3*3*3 products each
1555200
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def layer_macs(module: nn.Module, output: Any, inputs: tuple = ()) -> int:
    """Multiply-accumulates of one call of ``module`` that produced ``output``.

    Conv: every output element costs ``C_in/groups * k_h * k_w`` MACs.
    Transposed conv: every *input* element is spread over ``C_out/groups * k_h * k_w`` outputs.
    Linear: every output element costs ``in_features`` MACs.
    """
    if isinstance(module, nn.modules.conv._ConvNd) and isinstance(output, torch.Tensor):
        weight = module.weight  # (C_out, C_in/groups, *k), transposed: (C_in, C_out/groups, *k)
        if module.transposed:
            x = inputs[0]  # (N, C_in, *spatial_in)
            return x.shape[0] * math.prod(x.shape[2:]) * weight.numel()
        return output.numel() * math.prod(weight.shape[1:])
    if isinstance(module, nn.Linear) and isinstance(output, torch.Tensor):
        return output.numel() * module.in_features  # (..., out_features) outputs x in_features each
    return 0


def output_bytes(output: Any) -> int:
    """Bytes of the tensor(s) a layer returned (tuples, lists and dicts are summed)."""
    if isinstance(output, torch.Tensor):
        return output.numel() * output.element_size()
    if isinstance(output, (tuple, list)):
        return sum(output_bytes(o) for o in output)
    if isinstance(output, dict):
        return sum(output_bytes(o) for o in output.values())
    return 0


def output_shape(output: Any) -> tuple:
    """Shape of a layer's output; the first tensor's shape for tuples."""
    if isinstance(output, torch.Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)) and output:
        return output_shape(output[0])
    return ()
