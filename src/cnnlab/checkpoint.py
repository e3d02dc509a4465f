"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so
``torch.load(..., weights_only=True)`` can read it without unpickling any
object. Writing goes through :func:`cnnlab.fileio.atomic_path`: a crash
leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError
from cnnlab.fileio import atomic_path

FORMAT = "cnnlab-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Atomically write ``payload`` (plain data and tensors) to ``path``."""
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(record, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a cnnlab checkpoint safely; anything else is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise CnnlabError(f"checkpoint {path} does not exist")
    record = load_torch_file(path, map_location, "cannot load checkpoint {path}: it is corrupt or not a cnnlab "
                             "checkpoint ({reason})")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CnnlabError(f"{path} is not a cnnlab checkpoint (no '{FORMAT}' marker); was it written by cnnlab?")
    if record.get("format_version", 0) > FORMAT_VERSION:
        raise CnnlabError(f"{path} was written by a newer cnnlab (format {record['format_version']}); upgrade cnnlab")
    return record


def what_file_is(path: Path) -> str | None:
    """What a file that is no PyTorch pickle is (``None`` when it may be one), from its first bytes.

    ``torch.load`` calls a YAML file and random bytes alike "a pickled Python object"; this names
    a TorchScript archive, an ONNX model, an image, a text file and unrecognised bytes apart.
    """
    import zipfile

    with open(path, "rb") as fh:
        head = fh.read(4096)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            return None  # torch.load explains a broken archive
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return ("it is a TorchScript archive, as `cnnlab export --format torchscript` writes, not a checkpoint "
                    "or state dict; give the run directory it was exported from")
        return None if any(n.endswith("data.pkl") for n in names) else "it is a zip archive, not a PyTorch file"
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return None  # a pickle (torch's legacy format among them)
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"BM", b"GIF8")):
        return "it is an image, not a PyTorch file"
    if path.suffix.lower() == ".onnx" or head[:1] == b"\x08" and b"onnx" in head.lower():
        return "it is an ONNX model, as `cnnlab export` writes, not a checkpoint or state dict"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the 4096th byte
            return "its bytes are no format cnnlab reads: not a PyTorch, safetensors or text file"
        text = head[:exc.start].decode("utf-8")
    if "\x00" in text:
        return "its bytes are no format cnnlab reads: not a PyTorch, safetensors or text file"
    kind = "a YAML text file, like a config.yaml," if ":" in text and not text.lstrip().startswith(("{", "[")) \
        else "a text file"
    return f"it is {kind} not a PyTorch file"


def load_torch_file(path: Path, map_location, message: str) -> Any:
    """``torch.load(path, weights_only=True)``; a failure is one line from ``message`` (``{path}``, ``{reason}``).

    A file that is plainly something else (:func:`what_file_is`) is named before torch sees it, so
    torch's warnings (a TorchScript archive "dispatching to torch.jit.load") never reach the user.
    """
    import warnings

    other = what_file_is(path)
    if other is not None:
        raise CnnlabError(message.format(path=path, reason=other))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle with objects, ...
        raise CnnlabError(message.format(path=path, reason=_load_failure(exc))) from None


def _load_failure(exc: Exception) -> str:
    """A short reason for a failed ``torch.load``, without torch's advice to unpickle anyway."""
    text = " ".join(str(exc).split())
    blocked = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if blocked or "Weights only load failed" in text:
        # torch suggests weights_only=False, which would run whatever the file holds: never advise it.
        what = blocked.group(1) if blocked else "a Python object"
        return f"it holds a pickled Python object ({what[:100]}), which cnnlab never unpickles"
    return text[:200] or type(exc).__name__


def describe_mismatch(model_state: dict[str, torch.Tensor], saved: dict[str, Any]) -> str:
    """The first difference between a model's state dict and a saved one, e.g. for an error line.

    >>> describe_mismatch({"w": torch.zeros(2, 3)}, {"w": torch.zeros(4, 3)})
    "first mismatch 'w': checkpoint (4, 3) vs model (2, 3)"
    """
    for key, tensor in model_state.items():
        if key not in saved:
            return f"the checkpoint lacks '{key}' (model {tuple(tensor.shape)})"
        other = saved[key]
        if not isinstance(other, torch.Tensor):
            return f"'{key}' in the checkpoint is not a tensor"
        if other.shape != tensor.shape:
            return f"first mismatch '{key}': checkpoint {tuple(other.shape)} vs model {tuple(tensor.shape)}"
    extra = [k for k in saved if k not in model_state]
    if extra:
        return f"the checkpoint has '{extra[0]}', which the model lacks ({len(extra)} such key(s))"
    return "the tensors do not fit"


def load_model_state(model: torch.nn.Module, saved: Any, source: str) -> None:
    """``model.load_state_dict(saved)``, or a one-line error naming the first mismatching key and shapes."""
    if not isinstance(saved, dict):
        raise CnnlabError(f"{source}: the checkpoint's 'model' entry is not a state dict")
    try:
        model.load_state_dict(saved)
    except (RuntimeError, TypeError, ValueError, KeyError):
        raise CnnlabError(f"{source}: {describe_mismatch(model.state_dict(), saved)}") from None


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
