"""The callbacks a config can ask for, registered by name in the order they run.

Each builder takes ``(cfg, task)`` and returns the callback, or None when the config does not
ask for it. Add one with ``@register_callback("name")`` (cnnlab.train.callbacks). The order
here is the order they run: Lookahead before the EMA (the average follows the synchronised
weights), the EMA before the caller's callbacks (a probe at the last epoch sees the EMA).
"""

from __future__ import annotations

from cnnlab.train.callbacks import BUILDERS, Callback, EarlyStopping, register_callback
from cnnlab.train.cutmix import CutMix
from cnnlab.train.ema import WeightEMA
from cnnlab.train.lookahead import Lookahead
from cnnlab.train.mixup import Mixup
from cnnlab.train.monitor import Monitor
from cnnlab.transfer.freeze import GradualUnfreeze


@register_callback("early_stopping")
def _early_stopping(cfg, task):
    es = cfg.train.early_stopping
    return None if es.patience is None else EarlyStopping(es, Monitor.for_task(task, es.monitor))


@register_callback("unfreeze")
def _unfreeze(cfg, task):
    return None if cfg.train.unfreeze_every is None else GradualUnfreeze(cfg.train.unfreeze_every)


@register_callback("lookahead")  # before the EMA: the average follows the synchronised weights
def _lookahead(cfg, task):
    return None if cfg.train.lookahead is None else Lookahead(cfg.train.lookahead, cfg.train.lookahead_k)


@register_callback("ema")  # before the caller's callbacks: a probe at the last epoch sees the EMA
def _ema(cfg, task):
    return None if cfg.train.ema is None else WeightEMA(cfg.train.ema, cfg.train.ema_every)


@register_callback("mixup")
def _mixup(cfg, task):
    return None if cfg.train.mixup is None else Mixup(cfg.train.mixup, cfg.train.seed)


@register_callback("cutmix")
def _cutmix(cfg, task):
    return None if cfg.train.cutmix is None else CutMix(cfg.train.cutmix, cfg.train.seed)


def registered_callbacks() -> list[str]:
    """The names of the config-built callbacks, in the order they run."""
    return list(BUILDERS)


def config_callbacks(cfg, task) -> list[Callback]:
    """The callbacks ``cfg`` asks for (early stopping, gradual unfreezing, Lookahead, EMA, mixup, ...)."""
    built = (builder(cfg, task) for builder in BUILDERS.values())
    return [cb for cb in built if cb is not None]
