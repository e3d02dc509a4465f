"""torchvision's and timm's own ImageNet weights, downloaded (``model.weights=download``), checksums verified.

``tv:NAME`` (and the zoo's torchvision twins, ``resnet50`` with ``variant=imagenet``) take the
weights of torchvision's ``get_model_weights(NAME).DEFAULT``; ``timm:NAME`` takes timm's default
pretrained tag (its ``pretrained_cfg``). Either way the preprocessing the weights were trained
with -- input size, mean, std, interpolation, crop fraction and class names -- comes from the
library's own record, without any download, as a ``pretrained_cfg`` like the one of
``efficientnet_lite0.in1k`` (:mod:`cnnlab.models.pretrained`): the model carries it, a fine-tuned
run normalises with its mean/std and records it.

The file is streamed to a temporary name in the cache, hashed as it arrives and renamed into
place only when its SHA-256 matches the published one: torchvision's and timm's file names carry
a prefix of it (``resnet50-11ad3fa6.pth``); for weights only on the Hugging Face hub it is the
``X-Linked-Etag`` the hub sends (the SHA-256 of the stored file). Without a checksum nothing is
kept. ``.pth`` files are read with ``torch.load(weights_only=True)`` (no unpickling),
``.safetensors`` have no pickle at all.

Two environment variables make the download injectable (tests serve files from 127.0.0.1):

* ``CNNLAB_WEIGHTS_URL``: a mirror; the file is fetched as ``MIRROR/FILE`` (``FILE`` is the
  published file name, ``resnet50-11ad3fa6.pth``, or for hub-only weights
  ``timm--xception41.tf_in1k.safetensors``) instead of from the library's URL;
* ``CNNLAB_WEIGHTS_DIR``: the cache (default ``$XDG_CACHE_HOME/cnnlab/weights``, else
  ``~/.cache/cnnlab/weights``). A cached file is checked again before it is used, and is all
  that is needed when ``CNNLAB_OFFLINE`` is set.
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from cnnlab.data.download import BadDownload, fetch_verified, network_reason, offline
from cnnlab.errors import CnnlabError
from cnnlab.fileio import write_text_atomic
from cnnlab.models.external import import_timm
from cnnlab.models.pretrained import file_sha256, imagenet_classes
from cnnlab.models.weights import TORCHVISION_TWINS, WeightsFile, read_weights

URL_ENV = "CNNLAB_WEIGHTS_URL"
DIR_ENV = "CNNLAB_WEIGHTS_DIR"
MAX_BYTES = 4 << 30  # no published classifier is near 4 GiB; a server that never stops is cut off
HUB = "https://huggingface.co/{}/resolve/main/model.safetensors"
HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z]+$")  # torch hub's convention: NAME-<sha256 prefix>.pth


@dataclass(frozen=True)
class Published:
    """One set of weights a library publishes: where, under which name, with which checksum and preprocessing."""

    model: str  # as configured: "tv:resnet50", "timm:xception41", "resnet50"
    url: str
    file: str  # the name in the cache and on a mirror
    sha256: Optional[str]  # the whole digest or a prefix; None: the server's X-Linked-Etag
    cfg: dict  # pretrained_cfg (input_size, mean, std, interpolation, crop_fraction, classes, ...)


def _cfg(model: str, tag: str, size: int, mean, std, interpolation: str, crop: float,
         classes: Optional[list], license_: str, url: str) -> dict:
    """A ``pretrained_cfg`` with the keys of :func:`cnnlab.models.pretrained.pretrained_cfg`."""
    return {"name": f"{model}.{tag}", "architecture": model, "tag": tag, "input_size": [3, size, size],
            "mean": [float(v) for v in mean], "std": [float(v) for v in std],
            "interpolation": interpolation, "crop_fraction": round(float(crop), 6),
            "num_classes": len(classes) if classes else None, "classes": classes,
            "source": {"url": url, "license": license_}}


def torchvision_published(arch: str, model: str) -> Published:
    """torchvision's DEFAULT weights for ``arch``: the URL and transforms its weight enum records."""
    import torchvision

    try:
        entry = torchvision.models.get_model_weights(arch).DEFAULT
    except Exception:  # noqa: BLE001 -- an architecture without published weights
        raise CnnlabError(f"torchvision publishes no weights for '{arch}'; give model.weights=PATH") from None
    t = entry.transforms()
    crop, resize = int(t.crop_size[0]), int(t.resize_size[0])
    interpolation = getattr(t.interpolation, "value", str(t.interpolation))
    cfg = _cfg(model, str(entry).split(".")[-1], crop, t.mean, t.std, interpolation, crop / resize,
               list(entry.meta.get("categories") or []) or None, "BSD-3-Clause (torchvision)", entry.url)
    return _published(model, entry.url, entry.url.rsplit("/", 1)[-1], cfg)


def timm_published(arch: str, model: str) -> Published:
    """timm's default pretrained tag for ``arch``: its URL (or the hub's file) and its ``pretrained_cfg``."""
    import_timm()
    from timm.models import get_pretrained_cfg

    pc = get_pretrained_cfg(arch)
    if pc is None or not (pc.url or pc.hf_hub_id):
        raise CnnlabError(f"timm publishes no weights for '{arch}'; give model.weights=PATH")
    classes = list(imagenet_classes()) if pc.num_classes == 1000 else None
    # timm's hub id names the tag already (timm/xception41.tf_in1k); its file is the same name everywhere
    url = pc.url or HUB.format(pc.hf_hub_id)
    cfg = _cfg(model, pc.tag or "default", int(pc.input_size[-1]), pc.mean, pc.std, pc.interpolation or "bicubic",
               pc.crop_pct or 0.875, classes, pc.license or "see timm", url)
    return _published(model, url, url.rsplit("/", 1)[-1] if pc.url else pc.hf_hub_id.replace("/", "--") + ".safetensors",
                      cfg)


def _published(model: str, url: str, file: str, cfg: dict) -> Published:
    """The entry, its checksum the prefix its file name publishes (none for hub files: the hub's ETag)."""
    match = HASH_IN_NAME.search(url.rsplit("/", 1)[-1])
    sha256 = match.group(1) if match else None
    cfg["source"].update(file=file, sha256=sha256)
    return Published(model, url, file, sha256, cfg)


def published(name: str) -> Published:
    """The published weights for a configured model name; one line for a model without any."""
    if name.startswith("timm:"):
        return timm_published(name[5:], name)
    arch = name[3:] if name.startswith("tv:") else TORCHVISION_TWINS.get(name)
    if arch is None:
        raise CnnlabError(f"model.weights=download: no published weights for model '{name}'; use tv:NAME, "
                          f"timm:NAME or one of {', '.join(sorted(TORCHVISION_TWINS))} (variant=imagenet), "
                          "or give a file")
    return torchvision_published(arch, name)


def cache_dir() -> Path:
    """Where downloaded weights are kept (``CNNLAB_WEIGHTS_DIR``, else the user's cache)."""
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnlab" / "weights"


def _hub_sha256(headers: Any) -> Optional[str]:
    """The SHA-256 the Hugging Face hub sends for a stored file (X-Linked-Etag), or None."""
    value = (headers.get("X-Linked-Etag") or headers.get("ETag") or "").strip().strip('"')
    value = value[2:] if value.startswith("W/") else value
    return value.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", value) else None


def _cached(pub: Published, path: Path) -> Optional[str]:
    """The SHA-256 of a cached file that still has its checksum (hub files: the one recorded beside it), else None."""
    if not path.is_file():
        return None
    want = pub.sha256
    if want is None:
        record = path.with_name(path.name + ".sha256")
        want = record.read_text(encoding="ascii", errors="replace").strip() if record.is_file() else None
    digest = file_sha256(path)
    return digest if want and digest.startswith(want) else None


def fetch(pub: Published, directory: Path | None = None) -> tuple[Path, str]:
    """(the verified file in the cache, its SHA-256), downloading it when it is missing or damaged."""
    directory = Path(directory) if directory is not None else cache_dir()
    target = directory / pub.file
    instead = f"or download {pub.url} yourself and pass model.weights=PATH"
    digest = _cached(pub, target)
    if digest is not None:
        return target, digest
    if offline():
        raise CnnlabError(f"model.weights=download but CNNLAB_OFFLINE is set and {target} is not cached; "
                          f"unset CNNLAB_OFFLINE, set {DIR_ENV} to a folder holding {pub.file}, {instead}")
    mirror = os.environ.get(URL_ENV)
    url = f"{mirror.rstrip('/')}/{pub.file}" if mirror else pub.url
    try:
        directory.mkdir(parents=True, exist_ok=True)
        digest = fetch_verified(url, target, "sha256", pub.sha256 or _hub_sha256, MAX_BYTES, pub.file)
    except BadDownload as exc:
        raise CnnlabError(f"{pub.model} weights refused: {exc}; {instead}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise CnnlabError(f"cannot download {pub.model} weights from {url} ({network_reason(exc)}); "
                          f"{instead}") from None
    if pub.sha256 is None:  # the hub's checksum, kept so that the cached file can be checked again offline
        write_text_atomic(target.with_name(target.name + ".sha256"), digest + "\n")
    return target, digest


def download_weights(name: str) -> WeightsFile:
    """The published weights of ``name`` (fetched or cached, verified), with their ``pretrained_cfg``."""
    pub = published(name)
    path, digest = fetch(pub)
    weights = read_weights(path)
    cfg = {**pub.cfg, "source": {**pub.cfg["source"], "file": pub.file, "sha256": digest}}
    return WeightsFile(weights.state, f"{name} ({pub.file})", {"mean": cfg["mean"], "std": cfg["std"],
                                                               "pretrained_cfg": cfg})
