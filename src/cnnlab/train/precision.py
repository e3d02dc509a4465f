"""Mixed precision: ``train.precision=fp32|bf16|fp16`` as one autocast context and, for fp16, a gradient scaler.

bf16 keeps fp32's exponent range, so it needs nothing more than autocast. fp16 has 5 exponent
bits: small gradients underflow to zero, so the loss is multiplied by a scale before backward
(``torch.amp.GradScaler``), the gradients are unscaled before clipping and stepping, and a step
whose gradients overflowed is skipped while the scale is halved (it grows again after 2,000 clean
steps). fp16 is used where the device does fp16 arithmetic natively: CUDA GPUs, and CPUs with
AVX512-FP16/AMX-FP16 (``torch.ops.mkldnn._is_mkldnn_fp16_supported``). torch 2.14's CPU autocast
*accepts* fp16 elsewhere, but emulates it (measured here: about 1.5x slower than fp32 on a small
conv net, on a CPU without native fp16), so there it is refused in one line rather than run slowly.

>>> with autocast("cpu", "fp32"):
...     torch.ones(2, 2) @ torch.ones(2, 2)
tensor([[2., 2.],
        [2., 2.]])
>>> make_scaler("fp32", torch.device("cpu")) is None
True
"""

from __future__ import annotations

import torch

from cnnlab.errors import CnnlabError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device_type: str, precision: str):
    """``torch.autocast`` for ``precision`` (disabled for fp32)."""
    return torch.autocast(device_type, dtype=DTYPES.get(precision, torch.bfloat16), enabled=precision in DTYPES)


def fp16_supported(device: torch.device) -> bool:
    """Whether ``device`` does fp16 arithmetic natively (so autocast to fp16 is worth it)."""
    if device.type == "cuda":
        return True
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def check_fp16(device: torch.device) -> None:
    """One line, before any work, where ``train.precision=fp16`` cannot run natively."""
    if not fp16_supported(device):
        what = "this CPU has no native fp16 arithmetic (torch would emulate it, slower than fp32)" \
            if device.type == "cpu" else f"cnnlab runs fp16 with a gradient scaler on CUDA and CPUs only, not {device.type}"
        raise CnnlabError(f"train.precision=fp16: {what}; use train.precision=bf16 or fp32 here, or fp16 on a GPU")


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 training on ``device``; None otherwise."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)
