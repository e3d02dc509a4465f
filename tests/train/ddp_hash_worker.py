"""Run under torchrun by tests/train/test_distributed.py: trains ``mnist-fast`` through the Python API
and writes each rank's state-dict hash to ``<hash_dir>/rank<R>.txt`` at the end of training (test-only
callbacks, not library hooks). With ``--die-rank R``, rank R kills itself (SIGKILL) at the first step
of epoch 2, after rank 0 has saved epoch 1's ``last.pt``: a rank that dies mid-run.

    python -m torch.distributed.run --nproc_per_node=2 tests/train/ddp_hash_worker.py [--preset NAME] OUT HASH_DIR key=value...
"""

import hashlib
import os
import signal
import sys
from pathlib import Path

import torch

from cnnlab.config import load_config
from cnnlab.train.callbacks import Callback
from cnnlab.train.run import train


def state_hash(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor of a state dict (keys sorted): equal hashes, equal weights and buffers."""
    digest = hashlib.sha256()
    for key, tensor in sorted(state.items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class HashAtEnd(Callback):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_end(self, trainer) -> None:
        rank = os.environ.get("RANK", "0")
        (self.folder / f"rank{rank}.txt").write_text(state_hash(trainer.model.state_dict()) + "\n")


class DieInEpochTwo(Callback):
    def __init__(self, rank: int) -> None:
        self.rank = rank

    def on_step_end(self, trainer, metrics) -> None:
        if int(os.environ.get("RANK", "0")) == self.rank and trainer.epoch == 1 and trainer.batch_in_epoch == 1:
            os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    args = sys.argv[1:]
    callbacks = []
    preset = "mnist-fast"
    if args[0] == "--preset":  # e.g. detect-mnist-scenes: the same checks for a detector
        preset, args = args[1], args[2:]
    if args[0] == "--die-rank":
        callbacks.append(DieInEpochTwo(int(args[1])))
        args = args[2:]
    out, hash_dir, *overrides = args
    callbacks.append(HashAtEnd(Path(hash_dir)))
    train(load_config(preset, overrides), out, callbacks=callbacks, quiet=True)
