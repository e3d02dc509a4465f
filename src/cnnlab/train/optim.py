"""Optimizers from config, with weight decay kept off norm layers and biases by default,
and the explicit L1/L2 penalty terms.

>>> import torch
>>> from cnnlab.config import OptimConfig
>>> opt = build_optimizer(torch.nn.Linear(3, 2), OptimConfig(name="sgd", lr=0.1, weight_decay=5e-4))
>>> [g["weight_decay"] for g in opt.param_groups]
[0.0005, 0.0]
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.config import OptimConfig, check_fused_optimizer
from cnnlab.models.stages import model_stages


def _optimized(p: torch.Tensor) -> bool:
    """Trainable now, or frozen by cnnlab.transfer (kept in the optimizer so gradual unfreezing needs no rebuild;
    a parameter without a gradient is skipped by every torch optimizer, weight decay included)."""
    return p.requires_grad or getattr(p, "_cnnlab_frozen", False)


def _decay_groups(model: nn.Module, cfg: OptimConfig, params=None) -> list[dict]:
    """Split parameters: weights of convs/linears decay; norm parameters and biases do not."""
    params = [p for p in (model.parameters() if params is None else params) if _optimized(p)]
    if cfg.decay_norm_and_bias and cfg.bias_lr_scale == 1.0:
        return [{"params": params, "weight_decay": cfg.weight_decay}]
    decay, no_decay = [], []
    for p in params:
        (decay if p.ndim > 1 else no_decay).append(p)  # 1-D: biases and norm scales/shifts
    bias_group = {"params": no_decay, "weight_decay": cfg.weight_decay if cfg.decay_norm_and_bias else 0.0}
    if cfg.bias_lr_scale != 1.0:  # airbench trains biases 64x faster; the trainer multiplies lr by lr_scale
        bias_group["lr_scale"] = cfg.bias_lr_scale
    return [{"params": decay, "weight_decay": cfg.weight_decay}, bias_group]


def _layer_decay_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """Decay groups per stage, each with ``lr_scale = layer_decay ** (stages after it)`` (the head: 1).

    Stages are :func:`cnnlab.models.stages.model_stages`; the trainer multiplies its
    scheduled learning rate by each group's ``lr_scale``.
    """
    stages = model_stages(model)
    seen: set[int] = set()
    groups = []
    for i, (name, module) in enumerate(stages):
        params = [p for p in module.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        scale = cfg.layer_decay ** (len(stages) - 1 - i)
        for group in _decay_groups(model, cfg, params):
            groups.append({**group, "lr_scale": scale * group.get("lr_scale", 1.0), "stage": name})
    rest = [p for p in model.parameters() if id(p) not in seen]
    for group in _decay_groups(model, cfg, rest):  # parameters outside every stage train at the full rate
        groups.append({**group, "lr_scale": group.get("lr_scale", 1.0), "stage": "other"})
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam (AMSGrad), AdamW or RMSprop over the model's trainable parameters."""
    groups = _layer_decay_groups(model, cfg) if cfg.layer_decay is not None else _decay_groups(model, cfg)
    groups = [g for g in groups if g["params"]]
    check_fused_optimizer(cfg)
    # fused=None lets torch pick its default (foreach on CUDA, a per-tensor loop on the CPU); the fused
    # kernel is one call per step, which is most of the optimizer's cost for a small network on a CPU.
    fused = True if cfg.fused else None
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               fused=fused)
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad, fused=fused)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, amsgrad=cfg.amsgrad, fused=fused)
    return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum)


def penalty_weights(model: nn.Module) -> list[torch.Tensor]:
    """The tensors the explicit L1/L2 penalties act on: conv and linear weights."""
    return [m.weight for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight is not None and m.weight.requires_grad]


def penalty(weights: list[torch.Tensor], l1: float, l2: float) -> torch.Tensor | None:
    """``l1 * sum|w| + l2 * sum w^2`` over ``weights`` (None when both are zero)."""
    if not weights or (l1 == 0 and l2 == 0):
        return None
    total = weights[0].new_zeros(())
    for w in weights:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + l2 * w.pow(2).sum()
    return total
