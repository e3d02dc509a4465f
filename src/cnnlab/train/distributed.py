"""Distributed data-parallel training on ``torch.distributed``: the loop knowing its rank.

Launch any training run under ``torchrun`` and it becomes one rank of a
:class:`~torch.nn.parallel.DistributedDataParallel` job::

    torchrun --nproc_per_node=2 -m cnnlab train mnist-fast train.threads=1 --out runs/ddp

torchrun starts the processes and gives each ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`launch_env` reads
them and :func:`process_group` joins the group (NCCL on GPUs, gloo on CPUs, a
timeout on every collective so a dead rank cannot hang the others forever).

What each rank does, and why the result matches one process:

- **Data.** Every rank keeps the whole split resident (as one process would)
  and takes its shard of every global batch: the epoch's permutation is the
  one a single process draws (seeded by the run's seed and the epoch), global
  batch ``k`` is ``order[k*B:(k+1)*B]`` and rank ``r`` trains on the ``r``-th
  slice of ``B / world`` images of it (:func:`shard_batch_indices`). Every
  image is used once per epoch over the ranks, the steps per epoch are the
  single-process ones, and DDP's mean of the per-rank mean gradients is the
  gradient of the global batch.
- **Seeds.** The permutation and the model's initial weights come from the
  run's seed on every rank (DDP also broadcasts rank 0's weights); dropout
  and augmentation draw from a per-rank seed (:func:`rank_seed`; rank 0 keeps
  the run's seed, so one rank under torchrun repeats a plain run).
- **Metrics.** Loss, correct and count sums are added over ranks
  (``all_reduce``) before anything is logged or compared; validation and test
  sets are split into contiguous shards, evaluated, and their sums reduced the
  same way (:func:`shard_sums`, :func:`metrics_from_sums`). Every rank hence
  takes the same early-stopping and plateau decisions.
- **Batch norm.** Running statistics are rank-local while an epoch runs and
  averaged over ranks at its end (the mean of the ranks' moving averages is
  the moving average of the ranks' batch means), so every rank validates and
  checkpoints the same weights. ``train.sync_bn=true`` uses
  :class:`torch.nn.SyncBatchNorm` (batch statistics over the global batch;
  GPUs only, as in torch).
- **Files.** Rank 0 alone checks, creates and locks the run directory, logs,
  prints and writes checkpoints and the summary; the other ranks never open
  it for writing. ``last.pt`` carries every rank's RNG state, so ``--resume``
  (all ranks read rank 0's checkpoint) continues exactly.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from cnnlab.checkpoint import rng_state, set_rng_state
from cnnlab.data.loader import DeviceBatches, mix_seed
from cnnlab.errors import CnnlabError
from cnnlab.runs import resolve_device
from cnnlab.train.evaluate import EvalResult, evaluate
from cnnlab.train.strategy import Strategy

BACKENDS = ("auto", "gloo", "nccl")


# ----------------------------------------------------------------------------- launch environment


@dataclass(frozen=True)
class LaunchEnv:
    """What torchrun told this process: its global rank, the world size and its rank on this machine."""

    rank: int
    world_size: int
    local_rank: int


def launch_env(environ: dict[str, str] | None = None) -> LaunchEnv | None:
    """The torchrun environment, or None for a plain (single-process) run.

    >>> launch_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    LaunchEnv(rank=1, world_size=2, local_rank=1)
    >>> launch_env({}) is None
    True
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env and "RANK" not in env:
        return None
    try:
        world = int(env.get("WORLD_SIZE", ""))
        rank = int(env.get("RANK", ""))
        local = int(env.get("LOCAL_RANK", rank))
    except ValueError:
        raise CnnlabError(f"RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r} are not integers; "
                          "launch distributed runs with torchrun, which sets them") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise CnnlabError(f"RANK={rank} and WORLD_SIZE={world} do not describe a rank of a job; "
                          "launch distributed runs with torchrun, which sets them")
    return LaunchEnv(rank, world, local)


def is_lead_process(environ: dict[str, str] | None = None) -> bool:
    """True in a plain run and on rank 0 of a distributed one (the process that prints and writes)."""
    env = os.environ if environ is None else environ
    return env.get("RANK", "0").strip() in ("0", "")


def per_rank_batch(global_batch: int, world_size: int) -> int:
    """``data.batch_size`` is the global batch; each rank trains on ``global / world`` images a step.

    >>> per_rank_batch(128, 2)
    64
    >>> per_rank_batch(100, 3)
    Traceback (most recent call last):
    ...
    cnnlab.errors.CnnlabError: data.batch_size=100 (the global batch) is not divisible by the 3 ranks; set data.batch_size to a multiple of 3, e.g. 99 or 102
    """
    if global_batch % world_size:
        low = global_batch // world_size * world_size
        high = low + world_size
        hint = f"e.g. {low} or {high}" if low > 0 else f"e.g. {high}"
        raise CnnlabError(f"data.batch_size={global_batch} (the global batch) is not divisible by the "
                          f"{world_size} ranks; set data.batch_size to a multiple of {world_size}, {hint}")
    return global_batch // world_size


def choose_backend(requested: str, device: torch.device, nccl_available: bool | None = None,
                   gloo_available: bool | None = None) -> str:
    """``auto`` is NCCL for CUDA devices and gloo otherwise; an unusable explicit choice is one line.

    >>> choose_backend("auto", torch.device("cpu"))
    'gloo'
    >>> choose_backend("nccl", torch.device("cpu"), nccl_available=False)
    Traceback (most recent call last):
    ...
    cnnlab.errors.CnnlabError: train.dist_backend=nccl needs CUDA GPUs and a torch built with NCCL; this run is on cpu and NCCL is not available here: set train.dist_backend=gloo (or auto, which picks gloo on CPUs)
    """
    import torch.distributed as dist

    if nccl_available is None:
        nccl_available = dist.is_available() and dist.is_nccl_available() and torch.cuda.is_available()
    if gloo_available is None:
        gloo_available = dist.is_available() and dist.is_gloo_available()
    if requested not in BACKENDS:
        raise CnnlabError(f"train.dist_backend={requested!r} is not valid; expected one of {', '.join(BACKENDS)}")
    backend = requested if requested != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and (device.type != "cuda" or not nccl_available):
        why = "NCCL is not available here" if not nccl_available else "NCCL moves CUDA tensors only"
        raise CnnlabError(f"train.dist_backend=nccl needs CUDA GPUs and a torch built with NCCL; this run is on "
                          f"{device.type} and {why}: set train.dist_backend=gloo (or auto, which picks gloo on CPUs)")
    if backend == "gloo" and not gloo_available:
        raise CnnlabError("train.dist_backend=gloo but this torch was built without gloo; "
                          "use train.dist_backend=nccl on CUDA GPUs, or a torch build with gloo")
    return backend


def rank_seed(seed: int, rank: int) -> int:
    """The seed of ``rank``'s dropout and augmentation: the run's seed on rank 0, a mix of both elsewhere.

    >>> rank_seed(7, 0)
    7
    >>> rank_seed(7, 1) != rank_seed(7, 2) != 7
    True
    """
    return seed if rank == 0 else mix_seed(seed, rank, 0xD15) % (2**63)


# ----------------------------------------------------------------------------- sharding


def shard_batch_indices(order: torch.Tensor, batch: int, global_batch: int, rank: int,
                        world_size: int) -> torch.Tensor:
    """Rank ``rank``'s part of global batch ``batch`` of an epoch whose image order is ``order``.

    Global batch ``k`` is ``order[k*B:(k+1)*B]`` (as in one process); rank ``r`` takes
    its ``r``-th slice of ``B / world`` indices, so the ranks' parts of each global batch
    are disjoint and together are the whole batch.

    >>> order = torch.arange(8)
    >>> [shard_batch_indices(order, 1, 4, r, 2).tolist() for r in (0, 1)]
    [[4, 5], [6, 7]]
    """
    local = global_batch // world_size
    start = batch * global_batch + rank * local
    return order[start:start + local]


class ShardedBatches(DeviceBatches):
    """One rank's view of the training split: its slice of every global batch.

    Shares the images of ``full`` (the whole split stays resident); ``len()`` is the
    number of global batches (the steps of an epoch, as in one process). The order
    of an epoch comes from the run's seed, the augmentation of a batch from the
    rank's seed.
    """

    def __init__(self, full: DeviceBatches, rank: int, world_size: int, seed: int) -> None:
        # Not DeviceBatches.__init__: reuse full's tensors and settings as they are.
        self.__dict__.update(full.__dict__)
        self._gen = torch.Generator(device=full.images.device)
        self.global_batch = full.batch_size
        self.rank, self.world_size = rank, world_size
        self.order_seed = full.order_seed  # the permutation every rank agrees on
        self.seed = seed  # prepare() seeds the augmentation from self.seed
        self.batch_size = per_rank_batch(full.batch_size, world_size)
        self.drop_last = True  # every rank must take a full share of every step (DDP needs equal steps)
        if len(full.images) < self.global_batch:
            raise CnnlabError(f"{len(full.images)} training images are fewer than one global batch of "
                              f"{self.global_batch}; lower data.batch_size or use fewer ranks")

    def __len__(self) -> int:
        return len(self.images) // self.global_batch

    def epoch(self, epoch: int = 0, start_batch: int = 0) -> Iterator[tuple[torch.Tensor, Any]]:
        order = self.order(epoch)
        for b in range(start_batch, len(self)):
            idx = shard_batch_indices(order, b, self.global_batch, self.rank, self.world_size)  # (B / world,)
            yield self.batch(idx, epoch, b)


def shard_range(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """A contiguous, near-equal share ``[start, stop)`` of ``n`` evaluation images.

    >>> [shard_range(10, r, 3) for r in range(3)]
    [(0, 4), (4, 7), (7, 10)]
    """
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def eval_shard(batches: DeviceBatches, rank: int, world_size: int) -> DeviceBatches:
    """Rank ``rank``'s contiguous share of an evaluation split (same batch size, no shuffling)."""
    return batches.subset(*shard_range(len(batches.images), rank, world_size))


# ----------------------------------------------------------------------------- reducing metrics


@torch.no_grad()
def shard_sums(model: nn.Module, batches: DeviceBatches, precision: str = "fp32", **options) -> torch.Tensor:
    """``[loss sum, correct, count]`` (float64) of ``model`` over ``batches``: what ranks add up.

    ``options`` go to :func:`~cnnlab.train.evaluate.evaluate` as they are.
    """
    n = len(batches.images)
    result = evaluate(model, batches, precision, **options) if n else EvalResult(0.0, 0.0, 0)
    # evaluate returns means; counts stay exact in float64 below 2**53 images
    return torch.tensor([result.loss * n, round(result.accuracy * n), n], dtype=torch.float64)


def metrics_from_sums(sums: torch.Tensor) -> EvalResult:
    """Mean loss and accuracy from ``[loss sum, correct, count]`` added over ranks.

    >>> r = metrics_from_sums(torch.tensor([3.0, 2.0, 4.0], dtype=torch.float64))
    >>> r.loss, r.accuracy, r.count
    (0.75, 0.5, 4)
    """
    loss_sum, correct, count = sums.tolist()
    count = int(round(count))
    return EvalResult(loss=loss_sum / max(count, 1), accuracy=round(correct) / max(count, 1), count=count)


def pack_sums(sums: dict[str, torch.Tensor]) -> torch.Tensor:
    """The trainer's running sums (loss float64, correct and count int64) as one float64 tensor."""
    return torch.stack([sums["loss"].double(), sums["correct"].double(), sums["count"].double()])


def unpack_sums(packed: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inverse of :func:`pack_sums` (counts are exact in float64 below 2**53).

    >>> s = {"loss": torch.tensor(1.5, dtype=torch.float64), "correct": torch.tensor(3), "count": torch.tensor(4)}
    >>> {k: v.item() for k, v in unpack_sums(pack_sums(s)).items()}
    {'loss': 1.5, 'correct': 3, 'count': 4}
    """
    return {"loss": packed[0].clone(), "correct": packed[1].round().long(), "count": packed[2].round().long()}


# ----------------------------------------------------------------------------- the process group


class DDPStrategy(Strategy):
    """One rank of a joined process group: the :class:`~cnnlab.train.strategy.Strategy` of a torchrun job."""

    resume_command = "torchrun ... -m cnnlab train --resume"

    def __init__(self, rank: int, world_size: int, local_rank: int, backend: str, device: torch.device) -> None:
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.backend, self.device = backend, device

    def __repr__(self) -> str:
        return f"DDPStrategy(rank={self.rank}, world_size={self.world_size}, backend={self.backend})"

    # -- collectives
    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks (in place on the device the backend wants; the result is returned)."""
        import torch.distributed as dist

        moved = tensor.to(self.device) if self.backend == "nccl" else tensor.cpu()
        dist.all_reduce(moved)
        return moved.to(tensor.device)

    reduce_sum = all_reduce

    def reduce_sums(self, sums: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        device = sums["loss"].device
        return {k: v.to(device) for k, v in unpack_sums(self.all_reduce(pack_sums(sums))).items()}

    def any_rank(self, flag: bool) -> bool:
        return bool(self.all_reduce(torch.tensor(float(flag), dtype=torch.float64)).item() > 0)

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (small picklable values: a path, a flag)."""
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    broadcast = broadcast_object

    def all_gather_object(self, value: Any) -> list[Any]:
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    gather = all_gather_object

    def average_buffers(self, model: nn.Module) -> None:
        """Average floating-point buffers (batch-norm running statistics) over ranks, in place."""
        import torch.distributed as dist

        for buf in model.buffers():
            if buf.is_floating_point():
                moved = buf.detach().to(self.device) if self.backend == "nccl" else buf.detach().cpu()
                dist.all_reduce(moved)
                buf.copy_(moved.div_(self.world_size))

    end_of_epoch = average_buffers  # before validation and checkpoints: every rank holds the same weights

    # -- data
    def shard_train(self, batches, seed: int):
        return ShardedBatches(batches, self.rank, self.world_size, rank_seed(seed, self.rank))  # any target type

    def eval_shard(self, batches):
        return eval_shard(batches, self.rank, self.world_size)

    # -- the model
    def prepare_model(self, model: nn.Module, cfg) -> nn.Module:
        if cfg.train.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if self.rank:  # dropout draws per rank; the weights came from the run's seed on every rank
            torch.manual_seed(rank_seed(cfg.train.seed, self.rank))
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        import inspect

        from torch.nn.parallel import DistributedDataParallel

        # Buffers are averaged at each epoch's end instead of broadcast before every step
        # (torch >= 2.14 names that forward_sync_buffers; older ones broadcast_buffers).
        no_sync = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(
            DistributedDataParallel.__init__).parameters else "broadcast_buffers"
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       **{no_sync: False})

    # -- the loop
    def sync_step(self, loss: torch.Tensor, local_interrupt: bool, host_read: bool) -> tuple[torch.Tensor, bool]:
        # One small collective a step: the mean loss of the global batch (so every rank sees the
        # same non-finite loss) and whether any rank was asked to stop (Ctrl-C).
        both = self.all_reduce(torch.stack([loss.double(), torch.tensor(
            float(local_interrupt), dtype=torch.float64, device=loss.device)]))
        interrupted = bool(both[1].item() > 0) if host_read else False  # a host read: every step on the CPU only
        return (both[0] / self.world_size).to(loss.dtype), interrupted

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"rank_rng": self.all_gather_object(rng_state()), "world_size": self.world_size}

    def after_resume(self, trainer, state: dict[str, Any]) -> None:
        if not self.lead:
            trainer._sums = trainer._zero_sums()  # last.pt holds the sums of all ranks: rank 0 carries them
        rngs = state.get("rank_rng")
        if isinstance(rngs, list) and len(rngs) == self.world_size:
            set_rng_state(rngs[self.rank])
        else:  # another world size (or a plain run) saved it: fresh per-rank streams
            if self.rank:
                torch.manual_seed(rank_seed(trainer.cfg.train.seed, self.rank) + trainer.step)
            trainer.notice(f"last.pt was saved by {state.get('world_size', 1)} rank(s), this run has "
                           f"{self.world_size}: training continues, but not bit-exactly (dropout and "
                           "augmentation draws differ)")


DistContext = DDPStrategy  # the name used before strategies


def same_on_every_rank(exc: CnnlabError) -> CnnlabError:
    """Mark an error every rank raises alike (a config refusal): the CLI prints it on rank 0 only."""
    exc.every_rank = True
    return exc


def dist_device(cfg_device: str, env: LaunchEnv) -> torch.device:
    """The device of one rank: ``cuda:LOCAL_RANK`` on GPUs (one GPU per rank), else as configured."""
    device = resolve_device(cfg_device)
    if device.type != "cuda":
        return device
    if device.index is not None and cfg_device not in ("auto", "cuda"):
        raise CnnlabError(f"train.device={cfg_device} names one GPU, but under torchrun each rank uses "
                          "cuda:LOCAL_RANK; set train.device=cuda (or auto)")
    count = torch.cuda.device_count()
    if env.local_rank >= count:
        raise CnnlabError(f"rank {env.rank} has LOCAL_RANK={env.local_rank} but this machine has {count} GPU(s); "
                          f"start at most {count} processes per machine (--nproc_per_node={count})")
    return torch.device("cuda", env.local_rank)


def check_options(cfg, device: torch.device, env: LaunchEnv) -> str:
    """Every refusal that needs no process group, on every rank alike: the backend to use."""
    per_rank_batch(cfg.data.batch_size, env.world_size)
    backend = choose_backend(cfg.train.dist_backend, device)
    if cfg.train.sync_bn and device.type != "cuda":
        raise CnnlabError("train.sync_bn=true needs CUDA GPUs (torch's SyncBatchNorm does not run on the CPU); "
                          "drop train.sync_bn on the CPU (each rank then normalises by its own batch)")
    if cfg.train.unfreeze_every is not None:
        # DDP registers the parameters that require gradients when it wraps the model; a stage
        # unfrozen later would train on each rank's own gradients, and the ranks would drift apart.
        raise CnnlabError("train.unfreeze_every changes which parameters train during the run, which "
                          "DistributedDataParallel does not support; train without torchrun, or freeze a fixed "
                          "set (model.freeze) instead")
    return backend


@contextlib.contextmanager
def process_group(cfg, env: LaunchEnv | None) -> Iterator[DDPStrategy | None]:
    """Join the torchrun job for the block (None for a plain run); leaves it on exit.

    Refusals (batch not divisible, a backend the machine lacks, SyncBatchNorm on a CPU) come
    before the group is joined. Every collective has ``train.dist_timeout`` seconds.
    """
    if env is None:
        yield None
        return
    import torch.distributed as dist

    device = dist_device(cfg.train.device, env)  # its refusals may concern one rank only: each prints its own
    try:
        backend = check_options(cfg, device, env)
    except CnnlabError as exc:
        raise same_on_every_rank(exc)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        try:
            dist.init_process_group(backend, rank=env.rank, world_size=env.world_size,
                                    timeout=datetime.timedelta(seconds=cfg.train.dist_timeout))
        except (RuntimeError, ValueError) as exc:
            raise CnnlabError(f"rank {env.rank} could not join the other {env.world_size - 1} rank(s) "
                              f"({_short(exc)}); check --rdzv-endpoint / MASTER_ADDR:MASTER_PORT and that every "
                              "machine runs the same torchrun command") from None
    elif dist.get_world_size() != env.world_size:
        raise CnnlabError(f"a process group of {dist.get_world_size()} ranks is already joined, but "
                          f"WORLD_SIZE={env.world_size}")
    try:
        yield DDPStrategy(env.rank, env.world_size, env.local_rank, dist.get_backend(), device)
        if owned:
            # Leave together, with nothing left that talks to the group: a DDP wrapper freed after the
            # group is destroyed, or a rank tearing gloo down while another still writes the run's
            # files, can abort ("terminate called without an active exception").
            gc.collect()
            dist.barrier()
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


def _short(exc: BaseException, limit: int = 200) -> str:
    import re

    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\] ", "", text)  # gloo's source location
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_comm_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a lost peer or a collective that timed out (not a bug in the step)."""
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        word in text for word in ("gloo", "nccl", "connection closed", "connection reset", "timed out",
                                  "timeout", "broken pipe", "peer"))


@contextlib.contextmanager
def comm_failures_as_errors(ctx: DDPStrategy | None, run_dir: Path) -> Iterator[None]:
    """A lost rank or a timed-out collective becomes one line naming the way back (``--resume``)."""
    try:
        yield
    except Exception as exc:
        if ctx is None or isinstance(exc, CnnlabError) or not is_comm_failure(exc):
            raise
        error = CnnlabError(f"rank {ctx.rank} lost contact with the other ranks ({_short(exc, 160)}): a rank died, "
                            f"hung past train.dist_timeout, or the network failed; continue with "
                            f"`torchrun ... -m cnnlab train --resume {run_dir}`")
        error.this_rank_only = True  # each rank says what it saw
        raise error from None
