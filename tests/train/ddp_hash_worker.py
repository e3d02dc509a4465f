"""Run under torchrun by tests/train/test_distributed.py: trains through the Python API and writes
each rank's state-dict hash to ``<hash_dir>/rank<R>.txt`` (a test-only callback, not a library hook).

    python -m torch.distributed.run --nproc_per_node=2 tests/train/ddp_hash_worker.py OUT HASH_DIR key=value...
"""

import hashlib
import os
import sys
from pathlib import Path

from cnnlab.config import load_config
from cnnlab.train.callbacks import Callback
from cnnlab.train.run import train


def state_hash(model) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class HashAtEnd(Callback):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_train_end(self, trainer) -> None:
        rank = os.environ.get("RANK", "0")
        (self.folder / f"rank{rank}.txt").write_text(state_hash(trainer.model) + "\n")


if __name__ == "__main__":
    out, hash_dir, *overrides = sys.argv[1:]
    cfg = load_config("mnist-fast", overrides)
    train(cfg, out, callbacks=[HashAtEnd(Path(hash_dir))], quiet=True)
