"""Pretrained weights from local files, loaded without unpickling objects, with diagnostics.

Three sources, read by :func:`read_weights` (``create_model(name, weights=...)`` reaches them through
:func:`cnnlab.models.factory.load_weights_into`):

* a ``.pth``/``.pt`` file holding a state dict (torchvision's format, or a cnnlab
  checkpoint): read with ``torch.load(weights_only=True)``, so a pickle that
  carries code is refused and nothing in it runs;
* a ``.safetensors`` file (a header and raw tensors, no pickle at all);
* a cnnlab run directory (its ``final.pt``, else ``best.pt``, else ``last.pt``).

``model.weights=download`` (torchvision's and timm's published weights) is :mod:`cnnlab.models.online`.

Keys are matched by name first: a model key matches the source key equal to its
longest dotted suffix (``features.stem.conv1.weight`` finds torchvision's
``conv1.weight``, ``features.layer1.0.conv1.weight`` finds ``layer1.0.conv1.weight``).
When names do not line up but every tensor does, in order and shape (the zoo's
ImageNet ResNets, MobileNetV2 and VGG against torchvision's), they are matched
by position. The classifier -- the head's last linear layer -- is the one place
a shape may differ: it is then left freshly initialised, which is what
``num_classes`` other than the file's asks for. Anything else that does not fit
is a one-line error naming the first mismatching keys and shapes.

>>> import torch, torchvision                                        # doctest: +SKIP
>>> torch.save(torchvision.models.resnet18().state_dict(), "r18.pth")  # doctest: +SKIP
>>> from cnnlab.models import create_model                           # doctest: +SKIP
>>> net = create_model("resnet18", variant="imagenet", num_classes=10, weights="r18.pth")  # doctest: +SKIP
weights r18.pth: 120 of 122 tensors matched by position; classifier ... re-initialised for 10 classes
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.filemeta import check_image_meta
# The safe torch.load readers live with the trainer's checkpoints; they import only errors and fileio.
from cnnlab.checkpoint import load_checkpoint, load_torch_file

DOWNLOAD = "download"
# A finished run's weights, the tested ones first (the same order as cnnlab.runs.WEIGHT_FILES).
WEIGHT_FILES = ("final.pt", "best.pt", "last.pt")
# Zoo models whose ImageNet variant is torchvision's network tensor for tensor (tested in tests/models).
TORCHVISION_TWINS = {"resnet18": "resnet18", "resnet34": "resnet34", "resnet50": "resnet50",
                     "mobilenet_v2": "mobilenet_v2", "vgg11": "vgg11", "vgg16": "vgg16"}


@dataclass
class WeightsFile:
    """Tensors read from a weights source, plus what the source says about itself."""

    state: dict[str, torch.Tensor]
    origin: str  # the path as given, for messages
    meta: dict[str, Any] = field(default_factory=dict)  # a run's mean/std/input_size/classes/model_name


@dataclass
class MatchReport:
    """How a weights file's tensors were matched to a model's."""

    origin: str
    total: int  # tensors in the model's state dict
    matched: int
    by_position: bool
    reinitialised: list[str]  # classifier keys left freshly initialised
    unexpected: list[str]  # source keys nothing used
    lines: list[str]

    def __str__(self) -> str:
        return "; ".join(self.lines)


def _shape(t: Any) -> tuple:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else ()


def _unwrap(obj: Any, origin: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A state dict from what a ``.pth`` held: a plain one, ``{"state_dict": ...}``, or a cnnlab checkpoint."""
    meta: dict[str, Any] = {}
    if isinstance(obj, dict) and obj.get("format") == "cnnlab-checkpoint":
        # a run's size and normalisation are applied to the new run's data: checked as user input is
        meta = {**check_image_meta(obj, origin)._asdict(), "model_name": obj.get("model_name")}
        obj = obj.get("model")
    elif isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise CnnlabError(f"weights file {origin} holds no state dict (a mapping of names to tensors)")
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CnnlabError(f"weights file {origin}: key {key!r} is not a name; it is not a state dict")
        if isinstance(value, torch.Tensor):
            state[key[7:] if key.startswith("module.") else key] = value  # DataParallel's prefix
    if not state:
        raise CnnlabError(f"weights file {origin} holds no tensors; it is not a state dict")
    return state, meta


def read_weights(source: str | os.PathLike) -> WeightsFile:
    """Read tensors from a ``.pth``/``.pt``, a ``.safetensors`` file or a run directory (one-line errors)."""
    path = Path(source)
    origin = str(source)
    if path.is_dir():
        found = next((path / n for n in WEIGHT_FILES if (path / n).is_file()), None)
        if found is None:
            raise CnnlabError(f"model.weights={origin} is a folder but not a finished cnnlab run "
                              f"(no {', '.join(WEIGHT_FILES)})")
        state, meta = _unwrap(load_checkpoint(found), str(found))
        return WeightsFile(state, origin, meta)
    if not path.is_file():
        raise CnnlabError(f"weights file {origin} does not exist (model.weights takes a .pth/.safetensors "
                          "file, a run directory, or 'download')")
    if path.suffix == ".safetensors":
        try:
            from safetensors import safe_open
        except ImportError:
            raise CnnlabError("reading .safetensors needs the safetensors package: "
                              "pip install 'cnnlab[transfer]'") from None
        try:
            state = {}
            with safe_open(str(path), framework="pt", device="cpu") as fh:
                for key in fh.keys():
                    state[key] = fh.get_tensor(key)
        except Exception as exc:  # SafetensorError, a truncated header, ...
            reason = " ".join(str(exc).split())[:160]
            raise CnnlabError(f"cannot read weights file {origin}: it is corrupt or not safetensors "
                              f"({reason})") from None
        return WeightsFile(_unwrap(state, origin)[0], origin)
    obj = load_torch_file(path, "cpu", f"cannot read weights file {origin.replace('{', '{{').replace('}', '}}')}: "
                                       "it is corrupt or not a state dict ({reason})")
    state, meta = _unwrap(obj, origin)
    return WeightsFile(state, origin, meta)


# The prefixes cnnlab's wrappers put before a library's own names (tv:/timm: models, the features/head split).
WRAPPER_PREFIXES = ("", "features.", "head.", "features.stem.", "features.net.")


def _suffix_match(model_keys: list[str], source: dict[str, torch.Tensor]) -> dict[str, str]:
    """model key -> source key: the key itself, or the key less one of :data:`WRAPPER_PREFIXES`."""
    used: set[str] = set()
    pairs: dict[str, str] = {}
    for key in model_keys:
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix) and key[len(prefix):] in source and key[len(prefix):] not in used:
                pairs[key] = key[len(prefix):]
                used.add(pairs[key])
                break
    return pairs


def classifier_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the layer that outputs logits (the head's last linear layer)."""
    try:
        layer = model.classifier_layer()
    except Exception:  # noqa: BLE001 -- a model without one: every tensor must fit
        return set()
    return {f"{name}.{p}" for name, m in model.named_modules() if m is layer for p, _ in m.named_parameters()}


def match_state(model: nn.Module, weights: WeightsFile, name: str) -> tuple[dict[str, torch.Tensor], MatchReport]:
    """The tensors to load into ``model`` (model key -> tensor) and a report; a one-line error if they do not fit."""
    target = model.state_dict()
    keys = list(target)
    head = classifier_keys(model)
    source = weights.state
    pairs = _suffix_match(keys, source)
    by_position = False
    body = [k for k in keys if k not in head]
    named_ok = sum(1 for k in body if k in pairs and _shape(source[pairs[k]]) == _shape(target[k]))
    if named_ok < len(body) and len(source) == len(keys):
        # Names differ; the tensors may still line up in order (same network, other naming).
        positional = dict(zip(keys, source))
        if all(_shape(source[s]) == _shape(target[k]) for k, s in positional.items() if k not in head):
            pairs, by_position = positional, True
    mismatched = [(k, pairs[k]) for k in keys if k in pairs and _shape(source[pairs[k]]) != _shape(target[k])]
    missing = [k for k in keys if k not in pairs and not k.endswith("num_batches_tracked")]
    used = set(pairs.values())
    unexpected = [k for k in source if k not in used]
    bad = [(k, s) for k, s in mismatched if k not in head]
    lost = [k for k in missing if k not in head]
    if bad or lost:
        parts = [f"weights {weights.origin} do not fit model '{name}'"]
        if bad:
            k, s = bad[0]
            more = "".join(f", '{k2}' {_shape(source[s2])} vs {_shape(target[k2])}" for k2, s2 in bad[1:3])
            parts.append(f"{len(bad)} tensor(s) differ in shape: '{k}': file '{s}' {_shape(source[s])} vs model "
                         f"{_shape(target[k])}{more}")
        if lost:
            parts.append(f"{len(lost)} model tensor(s) missing from the file, first {', '.join(map(repr, lost[:3]))}")
            order = next(((k, s) for k, s in zip(keys, source) if _shape(source[s]) != _shape(target[k])), None)
            if weights.origin.endswith(".safetensors"):
                parts.append("a safetensors file keeps no tensor order, so only names can match "
                             "(torchvision's names fit tv:NAME models)")
            elif order is not None:
                k, s2 = order
                parts.append(f"in order, the first tensors that differ are model '{k}' {_shape(target[k])} "
                             f"and file '{s2}' {_shape(source[s2])}")
        if unexpected:
            parts.append(f"{len(unexpected)} file tensor(s) unused, first {', '.join(map(repr, unexpected[:3]))}")
        parts.append("is it a checkpoint of another architecture or variant?")
        raise CnnlabError("; ".join(parts))
    load = {k: source[s].to(dtype=target[k].dtype) for k, s in pairs.items()
            if _shape(source[s]) == _shape(target[k])}
    reinit = sorted(k for k in head if k not in load)
    lines = [f"weights {weights.origin}: {len(load)} of {len(keys)} tensors matched "
             + ("by position (the names differ, the shapes line up in order)" if by_position else "by name")]
    if reinit:
        was = next((_shape(source[s]) for k, s in mismatched if k in head and k.endswith("weight")), None)
        weight = next((k for k in reinit if k.endswith("weight")), reinit[0])
        shown = f"file {was} vs model {_shape(target[weight])}" if was else "not in the file"
        lines.append(f"classifier {', '.join(reinit)} re-initialised ({shown}): expected, the model has "
                     f"{getattr(model, 'num_classes', '?')} classes")
    if unexpected:
        lines.append(f"{len(unexpected)} file tensor(s) not used: {', '.join(unexpected[:4])}"
                     + (" ..." if len(unexpected) > 4 else ""))
    report = MatchReport(weights.origin, len(keys), len(load), by_position, reinit, unexpected, lines)
    return load, report


def weights_digest(model: nn.Module) -> str:
    """sha256 of a model's state (names, shapes, dtypes and bytes), for cache keys."""
    h = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{key}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
