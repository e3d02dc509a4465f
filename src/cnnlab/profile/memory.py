"""Memory a profile will need, estimated before it runs, so an absurd size is one line, not a crash.

``cnnlab profile resnet18 --input 3,100000,100000`` would allocate a 120 GB input batch and then
ask the kernel for more; the machine swaps or the process is killed. Instead the estimate is made
first and a profile needing more than half of the machine's memory is refused, naming the estimate:

- the input batch: ``batch * C * H * W * 4`` bytes (float32), known without building anything;
- the activations: the per-layer output sizes of one image, from a counting pass
  (:func:`cnnlab.profile.profile_model`) at the real size when it is small, else at a probe size
  of about 256x256 pixels scaled up by the ratio of pixel counts (feature maps scale with H*W,
  up to the rounding of strides), times the batch.

A training step (the timing pass) keeps every activation for the backward pass; the counting pass
alone keeps a few at a time (counted as six times the largest layer output, as measured). The estimate is honest about being an estimate ("about").
"""

from __future__ import annotations

import math
import os
from typing import Callable, Optional

from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.profile.profiler import profile_model

PROBE_PIXELS = 256 * 256  # pixels per image of the probe counting pass (and below which no probe is needed)
FALLBACK_LIMIT = 8 << 30  # used where the machine's memory cannot be read


def physical_memory_bytes() -> Optional[int]:
    """The machine's physical memory in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def memory_limit_bytes() -> int:
    """Half of physical memory: the most a profile may plan to use."""
    total = physical_memory_bytes()
    return total // 2 if total else FALLBACK_LIMIT


def probe_size(input_size: tuple[int, int, int], pixels: int = PROBE_PIXELS) -> tuple[int, int, int]:
    """A (C, h, w) of about ``pixels`` pixels with the aspect of ``input_size`` (unchanged if smaller).

    The short side keeps at least 32 pixels (or its own size) so that down-sampling models still
    take the probe.

    >>> probe_size((3, 100000, 100000))
    (3, 256, 256)
    >>> probe_size((3, 16, 100000))
    (3, 16, 4096)
    >>> probe_size((1, 28, 28))
    (1, 28, 28)
    """
    c, h, w = input_size
    if h * w <= pixels:
        return input_size
    factor = math.sqrt(pixels / (h * w))
    short, long_ = min(h, w), max(h, w)
    short_p = min(short, max(32, math.ceil(short * factor)))
    long_p = min(long_, max(short_p, pixels // short_p))
    return (c, short_p, long_p) if h <= w else (c, long_p, short_p)


def _gb(value: float) -> str:
    return f"{value / 1e9:.1f} GB"


def check_memory(
    model_at: Callable[[tuple[int, int, int]], nn.Module],
    input_size: tuple[int, int, int],
    batch_size: int,
    training: bool,
    what: str,
    limit: Optional[int] = None,
) -> None:
    """Refuse (one line, with the estimate) a profile of ``what`` that needs more than ``limit`` bytes.

    ``model_at(size)`` builds the model for a (C, H, W) size; it is called only at a small size.
    ``training``: the timing pass runs a training step, which keeps every activation.
    """
    limit = memory_limit_bytes() if limit is None else limit
    c, h, w = input_size
    input_bytes = batch_size * c * h * w * 4
    advice = "use a smaller --input or --batch"
    if input_bytes > limit:
        raise CnnlabError(f"{what} needs about {_gb(input_bytes)} for the input batch alone, more than the "
                          f"{_gb(limit)} allowed (half of this machine's memory); {advice}")
    if batch_size * h * w <= PROBE_PIXELS:
        return  # a few small images: the activations cannot be far off the input's order of magnitude
    probe = probe_size(input_size)
    exact = probe == tuple(input_size)
    model = model_at(probe)
    prof = None
    for module in (model, getattr(model, "features", None)):  # the head may be built for one size only
        if not isinstance(module, nn.Module):
            continue
        try:
            prof = profile_model(module, probe, batch_size=1)
            break
        except CnnlabError:
            continue
    if prof is None:
        return  # the model cannot take the probe; the real pass will say why, naming the layer
    scale = (h * w) / (probe[1] * probe[2]) * batch_size
    activations = prof.activation_bytes * scale
    peak = max((r.activation_bytes for r in prof.rows), default=0) * scale
    # A training step keeps every activation, plus weights, gradients and the step's copy of the model.
    # The counting pass holds the input and a few layer outputs at a time, plus the convolutions'
    # workspace: resnet18 at 1000x1000 and 4000x4000 peaked at about 5x its largest layer output.
    needed = input_bytes + (activations + 4 * prof.param_bytes if training else 6 * peak + prof.param_bytes)
    if needed > limit:
        how = "" if exact else f", scaled from a {probe[1]}x{probe[2]} probe"
        hint = advice + (" (or --no-timing: counting alone needs less)" if training else "")
        parts = (f"activations {_gb(activations)} kept by a training step" if training
                 else f"largest layer output {_gb(peak)}")
        raise CnnlabError(f"{what} needs about {_gb(needed)} (input {_gb(input_bytes)}, {parts}{how}), more "
                          f"than the {_gb(limit)} allowed (half of this machine's memory); {hint}")
