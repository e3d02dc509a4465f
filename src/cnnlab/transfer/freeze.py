"""Freezing parts of a network, keeping frozen batch norm frozen, and unfreezing on a schedule.

A frozen parameter has ``requires_grad=False``. A frozen batch-norm layer must
also stop updating its running mean and variance, or "frozen" layers would still
drift with the new data's statistics: each one gets a forward pre-hook that puts
it in eval mode before every call, whatever ``model.train()`` said.

Stages are those of :func:`cnnlab.models.stages.model_stages` (the ones
``cnnlab models NAME`` lists): ``freeze="all_but_last_k"`` with ``k=0`` trains the
head alone, ``k=1`` the last feature stage too, and so on.

>>> from cnnlab.models import create_model
>>> net = create_model("resnet18", num_classes=10)
>>> counts = apply_freeze(net, "all_but_last_k", k=1)
>>> [n for n, c in counts.items() if c["trainable"]]
['features.layer4', 'head']
"""

from __future__ import annotations

import fnmatch
from typing import Any

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.stages import model_stages
from cnnlab.train.callbacks import Callback
from cnnlab.train.optim import penalty_weights

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def _keep_eval(module: nn.Module, args: Any) -> None:
    module.training = False  # running statistics are neither used from the batch nor updated


def _set_trainable(module: nn.Module, trainable: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(trainable)
        p._cnnlab_frozen = not trainable  # noqa: SLF001 -- read by train.optim (kept in the optimizer)
    for m in module.modules():
        if isinstance(m, NORM_TYPES):
            handle = getattr(m, "_cnnlab_eval_hook", None)
            if not trainable and handle is None:
                m._cnnlab_eval_hook = m.register_forward_pre_hook(_keep_eval)
            elif trainable and handle is not None:
                handle.remove()
                m._cnnlab_eval_hook = None


def stage_counts(model: nn.Module) -> dict[str, dict[str, int]]:
    """Per stage: ``{"trainable": n, "frozen": n}`` parameter (element) counts."""
    out = {}
    for name, module in model_stages(model):
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
        out[name] = {"trainable": trainable, "frozen": frozen}
    return out


def apply_freeze(model: nn.Module, mode: Any, k: int | None = None) -> dict[str, dict[str, int]]:
    """Freeze ``model`` in place; return the trainable/frozen counts per stage.

    ``mode``: ``"all_but_last_k"`` (with ``k``), ``"all"`` (the same as ``k=0``: head only),
    ``"none"``, or a list of ``fnmatch`` patterns over parameter names
    (``["features.stem.*", "features.layer1.*"]``) naming what to freeze.
    """
    stages = model_stages(model)
    features_stages = len(stages) - 1
    if mode in (None, "none"):
        _set_trainable(model, True)
    elif mode in ("all_but_last_k", "all"):
        if not getattr(model, "stages_supported", True):
            raise CnnlabError(f"{type(model).__name__} has no separate stages (timm keeps its classifier inside "
                              "the network); freeze by name with model.freeze=[PATTERN, ...]")
        k = 0 if mode == "all" else k
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise CnnlabError(f"model.freeze_k must be an integer >= 0 (stages left trainable), got {k!r}")
        if k > features_stages:
            names = ", ".join(n for n, _ in stages[:-1])
            raise CnnlabError(f"model.freeze_k={k} but the model has {features_stages} feature stages ({names}); "
                              f"use 0..{features_stages} (`cnnlab models NAME` lists them)")
        _set_trainable(model, True)
        for _, module in stages[:features_stages - k]:
            _set_trainable(module, False)
    elif isinstance(mode, (list, tuple)) and mode and all(isinstance(p, str) for p in mode):
        _set_trainable(model, True)
        names = dict(model.named_modules())
        hit = {pattern: 0 for pattern in mode}
        for pname, param in model.named_parameters():
            if any(fnmatch.fnmatchcase(pname, pattern) for pattern in mode):
                for pattern in mode:
                    hit[pattern] += fnmatch.fnmatchcase(pname, pattern)
                owner = names[pname.rpartition(".")[0]] if "." in pname else model
                param.requires_grad_(False)
                param._cnnlab_frozen = True  # noqa: SLF001
                if isinstance(owner, NORM_TYPES) and getattr(owner, "_cnnlab_eval_hook", None) is None:
                    owner._cnnlab_eval_hook = owner.register_forward_pre_hook(_keep_eval)
        unused = [p for p, n in hit.items() if n == 0]
        if unused:
            example = next(iter(dict(model.named_parameters())), "")
            raise CnnlabError(f"model.freeze pattern {unused[0]!r} matches no parameter "
                              f"(names look like {example!r}; patterns are fnmatch globs)")
    else:
        raise CnnlabError(f"model.freeze={mode!r} is not valid; use all_but_last_k (with model.freeze_k=K), "
                          "all, none, or a list of name patterns like [features.stem.*]")
    return stage_counts(model)


def unfreeze_next(model: nn.Module) -> str | None:
    """Unfreeze the last still-frozen stage (working backwards from the head); its name, or None if none is left."""
    for name, module in reversed(model_stages(model)):
        if any(not p.requires_grad for p in module.parameters()):
            _set_trainable(module, True)
            return name
    return None


class GradualUnfreeze(Callback):
    """``train.unfreeze_every=E``: after every E epochs one more frozen stage (the last frozen one) trains.

    Frozen parameters are already in the optimizer (see ``cnnlab.train.optim``), so
    unfreezing only flips ``requires_grad``. On ``--resume`` the stages unfrozen by the
    epochs already done are unfrozen again before training continues.
    """

    def __init__(self, every: int) -> None:
        self.every = every

    def _refresh(self, trainer) -> None:
        trainer.params = [p for p in trainer.model.parameters() if p.requires_grad]
        trainer.penalty_weights = penalty_weights(trainer.model)

    def on_train_start(self, trainer) -> None:
        for _ in range(trainer.epoch // self.every):
            unfreeze_next(trainer.model)
        self._refresh(trainer)

    def on_epoch_end(self, trainer, metrics: dict[str, Any]) -> None:
        if trainer.epoch % self.every == 0 and trainer.epoch < trainer.cfg.train.epochs:
            name = unfreeze_next(trainer.model)
            if name is not None:
                self._refresh(trainer)
                trainer.notice(f"unfreezing {name} after epoch {trainer.epoch}")
