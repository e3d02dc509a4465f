"""The fast path: per-1024-example hyperparameters, the GPU options, and ``torch.compile``.

:func:`effective_config` turns the config a user wrote into the one the trainer runs, each
change announced in one line (the written ``config.yaml`` keeps what the user asked for):

* ``optim.per_1024``: ``optim.lr`` (and ``schedule.peak_lr``/``min_lr``) are the step size for
  1024 examples; the trainer uses ``lr * batch_size / 1024`` (the linear scaling rule, as
  airbench states its hyperparameters). Weight decay in torch's SGD/AdamW is multiplied by the
  lr, so the decay per example then stays the same at every batch size without rescaling it.
* ``train.gpu_fast``: on a CUDA device bf16 autocast, ``channels_last`` and ``torch.compile``
  are switched on; on any other device one notice says the recipe runs as written (fp32, eager).
* ``precision=bf16`` where the device has no bf16 arithmetic: one notice, fp32.

:func:`compile_model` compiles in place (``nn.Module.compile``: the state-dict keys do not
change, so checkpoints stay loadable without compile) and runs the warm-up steps that trigger
compilation, timed apart from training. A compiler failure (no C compiler for inductor on a
CPU, an unsupported op) is one notice and the model runs eagerly.

>>> from cnnlab.config import load_config
>>> cfg = load_config(None, ["optim.per_1024=true", "optim.lr=2.0", "data.batch_size=256"])
>>> effective_config(cfg, torch.device("cpu"), 256, notice=lambda m: None).optim.lr
0.5
"""

from __future__ import annotations

import copy
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.config import Config
from cnnlab.train.precision import autocast, check_fp16

Notice = Callable[[str], None]


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` does bf16 arithmetic natively (a CPU without it emulates, slowly)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def scale_per_1024(cfg: Config, batch_size: int) -> Config:
    """A copy of ``cfg`` whose learning rates are multiplied by ``batch_size / 1024``."""
    out = copy.deepcopy(cfg)
    factor = batch_size / 1024
    out.optim.lr = cfg.optim.lr * factor
    if cfg.schedule.peak_lr is not None:
        out.schedule.peak_lr = cfg.schedule.peak_lr * factor
    out.schedule.min_lr = cfg.schedule.min_lr * factor
    out.optim.per_1024 = False  # applied
    return out


def effective_config(cfg: Config, device: torch.device, batch_size: int, notice: Notice) -> Config:
    """The config the trainer runs on ``device`` (see the module docstring); ``cfg`` is not changed."""
    out = copy.deepcopy(cfg)
    tc = out.train
    if cfg.optim.per_1024:
        out = scale_per_1024(out, batch_size)
        tc = out.train
    if tc.gpu_fast:
        if device.type == "cuda":
            tc.precision = "bf16" if bf16_supported(device) else tc.precision
            tc.channels_last, tc.compile = True, True
        else:
            notice(f"notice: {cfg.name} uses bf16 and torch.compile on a GPU (train.gpu_fast); no CUDA device "
                   f"here, so it runs on {device.type} as written (fp32, eager)")
    if tc.precision == "bf16" and not bf16_supported(device):
        notice(f"notice: precision=bf16 but {device.type} has no native bf16 arithmetic here; training in fp32 "
               "(set train.precision=fp32 to silence this)")
        tc.precision = "fp32"
    if tc.precision == "fp16":
        check_fp16(device)
    return out


def _compile_failed(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}"


def compile_model(model: nn.Module, train_x: torch.Tensor, train_y: torch.Tensor, eval_x: torch.Tensor | None,
                  precision: str, label_smoothing: float = 0.0, notice: Notice = print,
                  backend: str | Callable = "inductor") -> float | None:
    """Compile ``model`` in place and warm it up; returns the seconds spent, or None after falling back.

    The warm-up runs one forward and backward on ``train_x`` (the training batch shape) and, with
    ``eval_x``, one evaluation forward, so the graphs training and testing use are built here
    and not inside the timed training steps. Weights, buffers (batch-norm statistics) and
    gradients are restored afterwards: the warm-up leaves no trace in the run.
    """
    state = copy.deepcopy(model.state_dict())
    was_training = model.training
    start = time.perf_counter()
    try:
        model.compile(backend=backend, dynamic=False)
        model.train()
        with autocast(train_x.device.type, precision):
            logits = model(train_x)
        F.cross_entropy(logits.float(), train_y, label_smoothing=label_smoothing).backward()
        if eval_x is not None:
            model.eval()
            with torch.no_grad(), autocast(eval_x.device.type, precision):
                model(eval_x)
        if train_x.device.type == "cuda":
            torch.cuda.synchronize(train_x.device)
        seconds = time.perf_counter() - start
    except Exception as exc:  # noqa: BLE001 - any compiler failure means: run eagerly
        model._compiled_call_impl = None  # undo nn.Module.compile (no public way back)
        notice(f"notice: train.compile failed ({_compile_failed(exc)}); training without it (eager). "
               "On a CPU torch.compile needs a C++ compiler (gcc/clang) on PATH")
        seconds = None
    finally:
        model.load_state_dict(state)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return seconds
