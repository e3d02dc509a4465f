"""How many processes train one run, and what they must agree on: the :class:`Strategy` the Trainer is given.

The Trainer and the tasks never ask "am I distributed?"; they ask the strategy to wrap the
model, add a sum over ranks, agree on a flag, hand out a shard of a split, and say whether this
process writes the run directory. :class:`SingleProcess` answers every question for one
process (each call is the identity, so a plain run does exactly what it did before strategies
existed); :class:`cnnlab.train.distributed.DDPStrategy` answers them for one rank of a
``torchrun`` job (Lightning splits its Trainer and Strategy the same way).

>>> import torch
>>> s = SingleProcess(torch.device("cpu"))
>>> s.lead, s.world_size, s.reduce_sum(torch.tensor(3.0)).item(), s.any_rank(True)
(True, 1, 3.0, True)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Strategy:
    """The questions the Trainer asks about the processes of a run (see the module docstring)."""

    rank = 0
    world_size = 1
    backend: str | None = None
    device: torch.device
    resume_command = "cnnlab train --resume"  # how a stopped run of this strategy is continued

    @property
    def lead(self) -> bool:
        """Whether this process checks, creates and writes the run directory and prints progress."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module the training step runs (DDP: the DistributedDataParallel wrapper)."""
        return model

    def prepare_model(self, model: nn.Module, cfg) -> nn.Module:
        """Per-process changes to a freshly built model before it is wrapped (SyncBatchNorm, rank seeds)."""
        return model

    def reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` added over ranks."""
        return tensor

    def reduce_sums(self, sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The trainer's running sums (loss, correct, count) added over ranks."""
        return sums

    def any_rank(self, flag: bool) -> bool:
        """True when ``flag`` is true on any rank."""
        return bool(flag)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (a small picklable object) on every rank."""
        return value

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order."""
        return [value]

    def shard_train(self, batches, seed: int):
        """This rank's share of every training batch."""
        return batches

    def eval_shard(self, batches):
        """This rank's contiguous share of an evaluation split."""
        return batches

    def sync_step(self, loss: torch.Tensor, local_interrupt: bool, host_read: bool) -> tuple[torch.Tensor, bool]:
        """The loss every rank logs and whether every rank stops after this step (Ctrl-C on any rank)."""
        return loss, local_interrupt

    def end_of_epoch(self, model: nn.Module) -> None:
        """Before validation and checkpoints: make what differs between ranks equal (batch-norm statistics)."""

    def checkpoint_extras(self) -> dict[str, Any]:
        """What ``last.pt`` needs beyond one process's state (every rank's RNG state); called on every rank."""
        return {}

    def after_resume(self, trainer, state: dict[str, Any]) -> None:
        """Adjust a trainer that just loaded ``state`` (``last.pt``) to this process's part of the run."""


class SingleProcess(Strategy):
    """One process on one device: every collective is the identity."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __repr__(self) -> str:
        return f"SingleProcess({self.device})"
