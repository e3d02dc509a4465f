"""Measured latency and throughput: inference and one training step, median of repeats.

Timing is done on the model's own device after ``warmup`` untimed calls;
on CUDA the device is synchronised around every timed call. The training
step (forward, cross-entropy, backward, SGD update) runs on a *copy* of the
model, so the caller's weights, gradients and batch-norm statistics are not
touched.

>>> from cnnlab.models import create_model
>>> t = time_model(create_model("lenet5"), (1, 32, 32), batch_size=2, warmup=1, repeats=2)
>>> [x.mode for x in t]
['inference', 'train_step']
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.profile.profiler import check_input_size, preserved_modes


@dataclass
class Timing:
    """Wall time of one call, in milliseconds, over ``repeats`` timed calls."""

    mode: str  # "inference" or "train_step"
    device: str
    batch_size: int
    warmup: int
    repeats: int
    median_ms: float
    min_ms: float
    max_ms: float
    threads: int  # torch intra-op threads (CPU)

    @property
    def images_per_second(self) -> float:
        return self.batch_size / (self.median_ms / 1000.0) if self.median_ms > 0 else float("inf")

    def to_dict(self) -> dict:
        return {**asdict(self), "images_per_second": self.images_per_second}


def _measure(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> list[float]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        sync()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def time_model(
    model: nn.Module,
    input_size: Optional[Sequence[int]] = None,
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 10,
    train_step: bool = True,
) -> list[Timing]:
    """Median latency of inference (eval mode, no autograd) and of a training step."""
    input_size = check_input_size(input_size or model.default_input_size)
    if warmup < 0 or repeats < 1:
        raise CnnlabError(f"timing needs warmup >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}")
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    x = torch.randn(batch_size, *input_size, device=device, dtype=dtype)
    threads = torch.get_num_threads()
    results = []

    def record(mode: str, times: list[float]) -> None:
        results.append(Timing(mode, str(device), batch_size, warmup, repeats, statistics.median(times),
                              min(times), max(times), threads))

    with preserved_modes(model):
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                model(x)

        record("inference", _measure(infer, device, warmup, repeats))

    if train_step:
        clone = copy.deepcopy(model).train()  # never step the caller's weights
        optimizer = torch.optim.SGD([p for p in clone.parameters() if p.requires_grad] or [torch.zeros(1)], lr=1e-3)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            out = clone(x)
            if out.dim() == 2:
                target = torch.zeros(out.shape[0], dtype=torch.long, device=device)
                loss = nn.functional.cross_entropy(out, target)
            else:
                loss = out.float().mean()
            loss.backward()
            optimizer.step()

        try:
            record("train_step", _measure(step, device, warmup, repeats))
        except RuntimeError as exc:
            if "more than 1 value per channel" in str(exc):
                raise CnnlabError(
                    f"a training step with batch size {batch_size} fails in batch norm (one value per channel); "
                    "time with --batch 2 or more, or use --no-timing"
                ) from None
            raise
        finally:
            del clone, optimizer
    return results
