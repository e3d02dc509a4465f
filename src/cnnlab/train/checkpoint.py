"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so
``torch.load(..., weights_only=True)`` can read it without unpickling any
object. Writing goes to a temporary file in the same folder, is flushed to
disk, then renamed over the target: a crash leaves the old file or the new
one, never half of one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError

FORMAT = "cnnlab-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (plain data and tensors) to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    try:
        with open(tmp, "wb") as fh:
            torch.save(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a cnnlab checkpoint safely; anything else is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"checkpoint {path} does not exist")
    try:
        record = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle with objects, random bytes ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CnnlabError(
            f"cannot load checkpoint {path}: it is corrupt or not a cnnlab checkpoint ({first[:200]})"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CnnlabError(f"{path} is not a cnnlab checkpoint (no '{FORMAT}' marker); was it written by cnnlab?")
    if record.get("format_version", 0) > FORMAT_VERSION:
        raise CnnlabError(f"{path} was written by a newer cnnlab (format {record['format_version']}); upgrade cnnlab")
    return record


def rng_state() -> dict[str, Any]:
    """Global torch RNG states (dropout draws from these)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
